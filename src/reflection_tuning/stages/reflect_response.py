"""Stage ``reflect_response``: the teacher rewrites answers, giving A* for (Q, A) and A** for (Q*, A_Q*).

Reflection-Tuning (arXiv 2310.11716): the teacher critiques an answer (helpfulness,
relevance, accuracy, level of detail) and writes a better one. It runs on every original
row (variant ``response``: Q, A*) and on every ok ``instruction`` row (variant ``both``:
Q*, A**); a ``both`` row whose instruction variant is not ok is ``upstream_unusable``.
Each output file has one row per original row. The step (template, schema, parser, row
shape) is :mod:`reflection_tuning.steps.reflect_response`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator

from reflection_tuning import status as st
from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.io import SortedJsonlWriter, iter_jsonl, write_metrics
from reflection_tuning.llm.config import EndpointConfig, api_key
from reflection_tuning.llm.outcome import Outcome, Tally
from reflection_tuning.llm.runner import iter_step
from reflection_tuning.rows import FIELDS, check_rows
from reflection_tuning.steps.prompt import PromptFiles
from reflection_tuning.steps.reflect_response import ReflectResponse, plan
from reflection_tuning.steps.rewrite import teacher_row

log = logging.getLogger(__name__)


# The ``reflect_response:`` section: the prompt files and the reply checks.
Config = PromptFiles


def run(cfg: Config, teacher_cfg: EndpointConfig, inputs: Inputs, outputs: Outputs, api_key: str | None = None) -> dict:
    """Write the ``response`` and ``both`` rows and the metrics; return the metrics. The
    teacher key ``api_key`` (which the command reads: ``llm.config.api_key``) is never written.

    Streamed: both inputs are read, sent, written and counted a chunk at a time (memory flat
    in rows). Requests go out per id: the original's, then its ``both`` one.

    Raises:
        UserError: the embedded model is missing (the command checks the inputs and prompt files); the endpoint
            refused the first request; more than ``max_request_errors`` of the rows sent are
            ``request_error`` (raised after the rows and metrics are written).
        ValueError: a bad input row or template; an input not sorted by ``id``.
        RuntimeError, TimeoutError: the embedded teacher cannot start.
    """
    step = ReflectResponse(cfg.prompt(FIELDS), cfg.checks(teacher_cfg.bounded))
    rows_in = check_rows(iter_jsonl(inputs.original), str(inputs.original), sorted_ids=True)  # for the merge-join
    stale: list[str] = []
    pending: deque[tuple[str, dict, str | None]] = deque()  # planned rows not written yet: at most a chunk

    def to_send() -> Iterator[dict]:
        for item in plan(iter_jsonl(inputs.original), iter_jsonl(inputs.instruction), stale):
            pending.append(item)
            if item[2] is None:
                yield item[1]

    tallies, total, stats = {"response": Tally(), "both": Tally()}, Tally(), {}
    common = {"teacher_model": teacher_cfg.model, "template_hash": step.template_hash}

    def written(outcome: Outcome | None) -> Iterator[tuple[str, dict]]:
        """The rows planned up to ``outcome`` (the next sent row); with None, the rest."""
        while pending:
            variant, row, why = pending.popleft()
            if why is None and outcome is None:
                raise RuntimeError("reflect_response: a sent row got no outcome")
            done = outcome if why is None else Outcome(row, st.UPSTREAM_UNUSABLE, reason=why, attempts=0)
            yield variant, teacher_row(total.add(tallies[variant].add(done)).row, variant, done, **common)
            if why is None:
                return

    with SortedJsonlWriter(outputs.response) as response, SortedJsonlWriter(outputs.both) as both:
        writers = {"response": response, "both": both}
        for outcome in iter_step(step, teacher_cfg, to_send(), api_key=api_key, desc="reflect_response", stats=stats):
            for variant, row in written(outcome):
                writers[variant].write(row)
        for variant, row in written(None):
            writers[variant].write(row)
    if stale:
        log.warning("%s: %d rows have no original row; ignored", inputs.instruction, len(stale))
    metrics = {
        "rows_in": rows_in,
        **tallies["response"].status_metrics(prefix="response_rows_"),
        **tallies["both"].status_metrics(prefix="both_rows_"),
        **stats,
        **total.token_metrics(teacher_cfg.price_usd()),
    }
    write_metrics(outputs.metrics, metrics)
    log.info("reflect_response: %d rows in; response %d ok; both %d ok, %d upstream unusable",
             rows_in, metrics["response_rows_ok"], metrics["both_rows_ok"],
             metrics["both_rows_upstream_unusable"])
    total.check_request_errors(teacher_cfg.max_request_errors, "reflect_response")
    return metrics


STAGE = Stage(
    "reflect_response", __doc__,
    sections=(Section(EndpointConfig, "teacher"), Section(Config, "reflect_response")),
    inputs={"original": PathSpec("data/{dataset}/original.jsonl", flag="input"),
            "instruction": "data/{dataset}/instruction.jsonl"},
    outputs={"response": PathSpec("data/{dataset}/response.jsonl", flag="output_response"),
             "both": PathSpec("data/{dataset}/both.jsonl", flag="output_both"),
             "metrics": "metrics/{dataset}/reflect_response.json"},
    invoke=lambda call: run(call.configs[1], call.configs[0], Inputs(**call.inputs), Outputs(**call.outputs),
                            api_key=api_key(call)),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
