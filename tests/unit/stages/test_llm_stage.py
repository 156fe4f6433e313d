"""The input checks the commands that send an LLM step run before sending anything (their
``main``, :func:`llm_stage_main`, runs in tests/unit/stages/test_reflect_loop.py)."""

from __future__ import annotations

import pytest

from reflection_tuning.errors import UserError
from reflection_tuning.stages.llm_stage import check_rows, require_files


def test_missing_inputs_name_their_role_and_what_to_run(tmp_path):
    (tmp_path / "original.jsonl").write_text("")
    require_files("reflect_response", original=tmp_path / "original.jsonl")
    with pytest.raises(UserError, match=r"reflect_response: missing instruction .*instruction.jsonl; run the earlier"):
        require_files("reflect_response", original=tmp_path / "original.jsonl",
                      instruction=tmp_path / "instruction.jsonl")


def test_check_rows_names_the_bad_row_and_what_to_do(alpaca_rows):
    check_rows(alpaca_rows[:3], "in.jsonl")
    bad = [*alpaca_rows[:2], {"id": "x", "instruction": "Q", "output": None}]
    with pytest.raises(UserError, match=r"in.jsonl: row 3 \(id x\) has no string \['output'\]; give the rows fetch"):
        check_rows(bad, "in.jsonl")
