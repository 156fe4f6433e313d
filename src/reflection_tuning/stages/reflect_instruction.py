"""Stage ``reflect_instruction``: the teacher rewrites each (Q, A) into (Q*, A_Q*).

Reflection-Tuning (arXiv 2310.11716): the teacher critiques the instruction (complexity,
detail, knowledge, ambiguity, reasoning), writes a better self-contained instruction Q*
(any input folded in, so the row's ``input`` is ""), and answers it with A_Q*. One output
row per input row, each with an explicit status. The step (template, schema, parser, row
shape) is :mod:`reflection_tuning.steps.reflect_instruction`.
"""

from __future__ import annotations

import logging

from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.io import iter_jsonl, write_jsonl, write_metrics
from reflection_tuning.llm.config import EndpointConfig, api_key
from reflection_tuning.llm.outcome import Tally
from reflection_tuning.llm.runner import iter_step
from reflection_tuning.rows import FIELDS, check_rows
from reflection_tuning.steps.prompt import PromptFiles
from reflection_tuning.steps.reflect_instruction import VARIANT, ReflectInstruction
from reflection_tuning.steps.rewrite import teacher_row

log = logging.getLogger(__name__)


# The ``reflect_instruction:`` section: the prompt files and the reply checks.
Config = PromptFiles


def run(cfg: Config, teacher_cfg: EndpointConfig, inputs: Inputs, outputs: Outputs, api_key: str | None = None) -> dict:
    """Reflect every original row; write the ``instruction`` rows and the metrics; return the metrics.

    Args:
        api_key: the teacher key (the command reads it: ``llm.config.api_key``); never written anywhere.

    Raises:
        UserError: the embedded model is missing (the command checks the input and prompt files); the endpoint
            refused the first request; more than ``max_request_errors`` of the rows are
            ``request_error`` (raised after the rows and metrics are written).
        ValueError: a bad input row or template.
        RuntimeError, TimeoutError: the embedded teacher cannot start.
    """
    step = ReflectInstruction(cfg.prompt(FIELDS), cfg.checks(teacher_cfg.bounded))
    rows_in = check_rows(iter_jsonl(inputs.original), str(inputs.original))  # a first pass: no request for a bad file
    # Streamed: the rows are read, sent, written and counted a chunk at a time (memory flat in rows).
    tally, stats = Tally(), {}
    outcomes = iter_step(step, teacher_cfg, iter_jsonl(inputs.original), api_key=api_key, desc="reflect_instruction",
                         stats=stats)
    write_jsonl(outputs.instruction, (teacher_row(tally.add(o).row, VARIANT, o, teacher_model=teacher_cfg.model,
                                                  template_hash=step.template_hash) for o in outcomes))
    metrics = {"rows_in": rows_in, **tally.status_metrics(), **stats, **tally.token_metrics(teacher_cfg.price_usd())}
    write_metrics(outputs.metrics, metrics)
    log.info("reflect_instruction: %d rows in, %d ok, %d parse errors, %d truncated, %d repetitive, %d copies, "
             "%d request errors", rows_in, metrics["rows_ok"], metrics["rows_parse_error"], metrics["rows_truncated"],
             metrics["rows_repetitive"], metrics["rows_copy"], metrics["rows_request_error"])
    tally.check_request_errors(teacher_cfg.max_request_errors, "reflect_instruction")
    return metrics


STAGE = Stage(
    "reflect_instruction", __doc__,
    sections=(Section(EndpointConfig, "teacher"), Section(Config, "reflect_instruction")),
    inputs={"original": PathSpec("data/{dataset}/original.jsonl", flag="input")},
    outputs={"instruction": PathSpec("data/{dataset}/instruction.jsonl", flag="output"),
             "metrics": "metrics/{dataset}/reflect_instruction.json"},
    invoke=lambda call: run(call.configs[1], call.configs[0], Inputs(**call.inputs), Outputs(**call.outputs),
                            api_key=api_key(call)),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
