"""Stage ``reflect_response``: its input checks (the stage runs in tests/integration/stages/; how it
pairs the instruction rows with the originals, ``plan``, is tested in tests/unit/steps/)."""

from __future__ import annotations


def test_unsorted_originals_are_one_clear_error(tmp_path):
    import pytest

    from reflection_tuning.infra.errors import UserError
    from reflection_tuning.rows import check_rows

    rows = [{"id": i, "instruction": "q", "output": "a"} for i in ("b", "a")]
    assert check_rows(rows, "x.jsonl") == 2  # reflect_instruction takes any order
    with pytest.raises(UserError, match="row 2 .id a. is not after id b"):
        check_rows(rows, "x.jsonl", sorted_ids=True)
