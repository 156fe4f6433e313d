"""Stage ``reflect_response``: how it pairs the instruction rows with the originals (the stage
runs in tests/integration/stages/)."""

from __future__ import annotations


def test_plan_joins_by_id_and_marks_the_rows_not_sent():
    from reflection_tuning.stages.reflect_response import plan

    originals = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    reflected = [{"id": "a", "status": "ok"}, {"id": "b", "status": "parse_error"}, {"id": "z", "status": "ok"}]
    stale: list[str] = []
    got = [(variant, row["id"], why) for variant, row, why in plan(originals, reflected, stale)]
    assert got == [("response", "a", None), ("both", "a", None),
                   ("response", "b", None), ("both", "b", "instruction variant is parse_error"),
                   ("response", "c", None), ("both", "c", "no instruction row for this id")]
    assert stale == ["z"]
    # the `both` row sent is the instruction row (its Q*, A_Q*), not the original
    assert next(row for v, row, why in plan(originals, reflected) if v == "both")["status"] == "ok"


def test_unsorted_originals_are_one_clear_error(tmp_path):
    import pytest

    from reflection_tuning.errors import UserError
    from reflection_tuning.stages.llm_stage import check_rows

    rows = [{"id": i, "instruction": "q", "output": "a"} for i in ("b", "a")]
    assert check_rows(rows, "x.jsonl") == 2  # reflect_instruction takes any order
    with pytest.raises(UserError, match="row 2 .id a. is not after id b"):
        check_rows(rows, "x.jsonl", sorted_ids=True)
