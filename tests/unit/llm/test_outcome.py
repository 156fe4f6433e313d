"""The counts of a stream of outcomes (the runner's outcomes themselves: test_runner.py), and the
provenance fields of a row."""

from __future__ import annotations

from reflection_tuning import status as st
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.cost import Price
from reflection_tuning.llm.outcome import Outcome, Tally, provenance, status_metrics, token_metrics


def test_tally_counts_rows_the_stage_wrote():
    tally = Tally()
    for _ in range(2):
        tally.add(Outcome({"id": "x"}, st.UPSTREAM_UNUSABLE, attempts=0))
    m = tally.status_metrics(prefix="both_rows_")
    assert (m["both_rows_out"], m["both_rows_upstream_unusable"], m["both_rows_ok"]) == (2, 2, 0)
    assert set(st.STEP) <= {k.removeprefix("both_rows_") for k in m}
    assert tally.token_metrics()["completion_tokens"] == 0


def test_tokens_cost_and_provenance_of_replies_fetched_and_cached():
    fetched, cached = Completion("a", "stop", 100, 10), Completion("b", "stop", 50, 5, cached=True)
    ok = Outcome({"id": "1"}, st.OK, {"x": 1}, completion=cached, attempts=2, candidates=2, replies=[fetched, cached])
    failed = Outcome({"id": "2"}, st.REQUEST_ERROR, reason="HTTP 500")
    tokens = token_metrics([ok, failed], Price(1e6, 1e6))  # USD 1 a token
    assert (tokens["prompt_tokens"], tokens["completion_tokens"], tokens["prompt_tokens_sent"]) == (150, 15, 100)
    assert (tokens["cost_usd"], tokens["cost_usd_sent"]) == (165.0, 110.0)
    counts = status_metrics([ok, failed])
    assert (counts["rows_ok_reasked"], counts["rows_multi_candidate"], counts["rows_request_error"]) == (1, 1, 1)
    assert provenance(ok, "m", "h") == {"teacher_model": "m", "template_hash": "h", "raw_reply": "b",
                                        "finish_reason": "stop", "prompt_tokens": 50, "completion_tokens": 5,
                                        "attempts": 2, "reply_format": "markers", "adaptations": []}
    assert provenance(failed, "m", "h")["raw_reply"] is None
