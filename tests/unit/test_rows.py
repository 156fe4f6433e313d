from reflection_tuning.rows import canonical, row_id


def test_id_is_a_stable_content_hash():
    assert row_id("a", "", "b") == row_id("a", "", "b")
    assert row_id("a", "", "b") != row_id("a", "b", "")  # fields are not concatenated
    assert len(row_id("a", "", "b")) == 16
    assert canonical("a", "", "b", "s")["id"] == row_id("a", "", "b")
