"""``reflection-tuning compress``: the teacher rewrites each instruction and its input as one
instruction, the way the reference preprocessed Alpaca before reflecting (Reflection_Tuning
README: "we first compress the instruction and input into one single instruction"; its
result is ``../shared/data/alpaca/cherry_alpaca_5_percent_compressed.json``).

Reads an Alpaca file (a JSON array or JSONL with ``instruction``, ``input``, ``output``) and
writes, in input order, one JSONL row per usable record: ``id`` (of the original triple),
``instruction`` (merged), ``input`` "", ``output`` (unchanged), ``merged`` (false for a row
that had no input and was copied without a request), ``status`` and the teacher's
provenance. Records that cannot be read, and rows whose reply did not parse, go to the
rejects file with a ``status`` and ``reason``. The output is a dataset for ``fetch``.
The step (template, schema, parser, row shape) is :mod:`reflection_tuning.steps.compress`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.command import Flag, Section, Stage, beside
from reflection_tuning.infra.io import write_jsonl, write_metrics
from reflection_tuning.llm.config import EndpointConfig, api_key
from reflection_tuning.llm.outcome import Tally
from reflection_tuning.llm.runner import run_step
from reflection_tuning.readers import to_fields
from reflection_tuning.rows import FIELDS, row_id
from reflection_tuning.steps.compress import Compress, merged_row
from reflection_tuning.steps.prompt import PromptFiles

log = logging.getLogger(__name__)
REJECT_UNREADABLE = "unreadable"


# The ``compress:`` section: the prompt files and the reply checks.
Config = PromptFiles


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, rejects) of an Alpaca file: rows ``{id, instruction, input, output}`` in file
    order; a record that cannot be read is a reject ``{line, status, reason}``.

    Raises:
        UserError: the file is missing or not valid JSON (``fetch``'s reader).
    """
    from reflection_tuning.readers import read_records as read_source

    rows, rejects = [], []
    for record in read_source(str(path)):
        try:
            if record.error is not None:
                raise ValueError(record.error)
            instruction, input_, output = to_fields(record.value, "alpaca")
        except ValueError as e:
            rejects.append({"line": record.line, "status": REJECT_UNREADABLE, "reason": str(e)})
            continue
        rows.append({"id": row_id(instruction, input_, output), "instruction": instruction, "input": input_,
                     "output": output})
    return rows, rejects


def run(cfg: Config, teacher_cfg: EndpointConfig, source: Path, output: Path, rejects_path: Path,
        metrics_path: Path | None = None, api_key: str | None = None) -> dict[str, Any]:
    """Merge every row's input into its instruction; write the rows, the rejects and the metrics.

    Rows counted in = rows out + rejects. Returns the metrics.

    Raises:
        UserError: the endpoint refused the first request (the command checks the input and prompt files);
            more than ``max_request_errors`` of the rows sent are ``request_error`` (raised
            after the rows, rejects and metrics are written).
        RuntimeError, TimeoutError: the embedded teacher cannot start.
    """
    step = Compress(cfg.prompt(FIELDS), cfg.checks(teacher_cfg.bounded))
    rows, rejects = read_records(source)
    to_send = [r for r in rows if r["input"].strip()]
    done = run_step(step, teacher_cfg, to_send, api_key=api_key, desc="compress")
    sent = iter(done.outcomes)  # in the order of to_send
    out = []
    for r in rows:
        if r["input"].strip():
            new = merged_row(next(sent), teacher_cfg.model, step.template_hash)
        else:
            new = {**r, "input": "", "merged": False, "status": st.OK}
        (out if new["status"] == st.OK else rejects).append(new)
    write_jsonl(output, out, sort_by=())  # file order: the dataset's own order, as fetch samples it
    write_jsonl(rejects_path, rejects, sort_by=())
    tally = Tally()
    for o in done.outcomes:
        tally.add(o)
    metrics = {"records_in": len(rows) + sum(r["status"] == REJECT_UNREADABLE for r in rejects),
               "rows_out": len(out), "rows_rejected": len(rejects), "rows_without_input": len(rows) - len(to_send),
               **tally.status_metrics(prefix="merge_"), **done.stats, **tally.token_metrics(teacher_cfg.price_usd())}
    if metrics_path:
        write_metrics(metrics_path, metrics)
    log.info("compress: %d records, %d rows out (%d merged by the teacher), %d rejected", metrics["records_in"],
             len(out), metrics["merge_ok"], len(rejects))
    tally.check_request_errors(teacher_cfg.max_request_errors, "compress")
    return metrics


# A command, not a pipeline stage (no dvc.yaml entry): no --dataset, the paths are options.
STAGE = Stage(
    "compress", __doc__,
    sections=(Section(EndpointConfig, "teacher"), Section(Config, "compress")),
    dataset=False,
    flags=(Flag("--input", type=Path, required=True, reads=True, help="Alpaca JSON or JSONL file"),
           Flag("--output", type=Path, required=True, help="merged rows (JSONL)"),
           Flag("--rejects", type=Path, default=None, help="default <output stem>.rejects.jsonl"),
           Flag("--metrics", type=Path, default=None, help="also write the metrics (JSON) here")),
    invoke=lambda call: run(call.configs[1], call.configs[0], call.args.input, call.args.output,
                            call.args.rejects or beside(call.args.output, "rejects", "rejects.jsonl"),
                            call.args.metrics, api_key=api_key(call)),
)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
