import pytest

from reflection_tuning.rows import INPUT_SEPARATOR, canonical, merge_input, row_id


def test_id_is_a_stable_content_hash():
    assert row_id("a", "", "b") == row_id("a", "", "b")
    assert row_id("a", "", "b") != row_id("a", "b", "")  # fields are not concatenated
    assert len(row_id("a", "", "b")) == 16
    assert canonical("a", "", "b", "s")["id"] == row_id("a", "", "b")


def test_merge_input_folds_the_input_after_a_blank_line():
    assert merge_input("Design a wellness plan for the given audience", "Expectant Mothers") == (
        "Design a wellness plan for the given audience\n\nExpectant Mothers")
    assert merge_input("Say hi.", "") == "Say hi."
    assert merge_input("Say hi.", "  \n ") == "Say hi."  # a blank input adds nothing
    assert merge_input("Sum: ", " 1 2 \n") == "Sum:" + INPUT_SEPARATOR + "1 2"
    assert merge_input("a", "b") == merge_input("a", "b")  # pure: same text every time


def test_canonical_merge_keeps_the_id_of_the_triple_as_read():
    kept = canonical("Translate.", "Bonjour", "Hello", "s", input_mode="keep")
    merged = canonical("Translate.", "Bonjour", "Hello", "s", input_mode="merge")
    assert merged["id"] == kept["id"] == row_id("Translate.", "Bonjour", "Hello")
    assert (merged["instruction"], merged["input"]) == ("Translate.\n\nBonjour", "")
    assert (kept["instruction"], kept["input"]) == ("Translate.", "Bonjour")
    no_input = canonical("Say hi.", "", "Hi.", "s", input_mode="merge")
    assert no_input == canonical("Say hi.", "", "Hi.", "s")
    with pytest.raises(ValueError, match="unknown input mode"):
        canonical("a", "", "b", "s", input_mode="drop")
