"""``compress``: the merged instruction, the answer kept, the output and reject rows."""

from __future__ import annotations

from reflection_tuning import status as st
from reflection_tuning.llm.outcome import Outcome
from reflection_tuning.steps.compress import Compress, merged_row
from reflection_tuning.steps.compress import parse_reply as parse_merged_reply

from .test_reflect_instruction import ROW_IN, prompt, reply


def test_compress_step():
    step = Compress(prompt("compress"))
    user = step.format_input(ROW_IN)[-1]["content"]
    assert "The Notebook" in user and "Describe the movie." in user and "A love story." in user
    got = step.parse(reply('[New Instruction] Describe the movie "The Notebook". [End]'), ROW_IN)
    assert got.fields["instruction"] == 'Describe the movie "The Notebook".'
    assert (got.fields["input"], got.fields["output"]) == ("", "A love story.")
    assert not parse_merged_reply("[New Instruction] the merged instruction [End]").ok


def test_merged_and_reject_rows():
    step = Compress(prompt("compress"))
    parsed = step.parse(reply('[New Instruction] Describe the movie "The Notebook". [End]'), ROW_IN)
    done = Outcome(ROW_IN, st.OK, fields=parsed.fields, completion=reply("x"))
    row = merged_row(done, "m", step.template_hash)
    assert (row["id"], row["input"], row["output"], row["merged"], row["status"]) == (
        "2",
        "",
        "A love story.",
        True,
        "ok",
    )
    assert row["teacher_model"] == "m" and row["template_hash"] == step.template_hash
    failed = merged_row(Outcome(ROW_IN, st.PARSE_ERROR, reason="no marker", completion=reply("x")), "m", "h")
    assert failed["instruction"] == ROW_IN["instruction"] and (failed["status"], failed["reason"]) == (
        "parse_error",
        "no marker",
    )
