"""Stage ``reflect_response``: its command and path options (the stage runs in tests/integration/stages/)."""

from __future__ import annotations

from stage_help import check_help_lists_path_options


def test_help_lists_the_path_options():
    check_help_lists_path_options("reflect_response")


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
