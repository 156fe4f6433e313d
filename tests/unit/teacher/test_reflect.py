"""teacher.reflect: the input check both reflection stages run before sending anything."""

from __future__ import annotations

import pytest

from reflection_tuning.errors import UserError
from reflection_tuning.teacher.reflect import check_rows


def test_check_rows_names_the_bad_row_and_what_to_do(alpaca_rows):
    check_rows(alpaca_rows[:3], "in.jsonl")
    bad = [*alpaca_rows[:2], {"id": "x", "instruction": "Q", "output": None}]
    with pytest.raises(UserError, match=r"in.jsonl: row 3 \(id x\) has no string \['output'\]; give the rows fetch"):
        check_rows(bad, "in.jsonl")
