"""The statuses of an LLM step's rows: defined once, and only ``ok`` rows are used downstream."""

from __future__ import annotations

import pytest

from reflection_tuning import status as st
from reflection_tuning.rows import is_usable


def test_reaskable_statuses_are_replies_that_came_back():
    # a reply that came back but is not whole is asked again; a request that failed is not
    assert set(st.STEP) > st.REASKABLE and st.REQUEST_ERROR not in st.REASKABLE


@pytest.mark.parametrize("status", st.STEP)
def test_only_ok_rows_are_scored_or_trained_on(status):
    row = {"id": "x", "instruction": "Say hi.", "input": "", "output": "Hi.", "status": status}
    assert is_usable(row) is (status == st.OK)
    # a failed row has no fields, whatever its status
    assert not is_usable({**row, "instruction": None, "output": None})
