"""The teacher rows both reflection stages write: one row per input row, with an explicit
status (:mod:`reflection_tuning.llm.status`) and the provenance of its reply.

Statuses: ``ok``; ``parse_error`` (the reply has no usable marked segment); ``truncated``
(the reply hit ``max_tokens``: never parsed as complete); ``request_error`` (the request
failed after retries); ``cost_cap`` (not sent: it could have taken the spend over
``teacher.max_cost``); ``upstream_unusable`` (``both`` rows whose instruction variant is
not ok). An ok row keeps the teacher's ``critique`` (the text it wrote before its
answer blocks, "" when none). A row that is not ok has ``instruction``, ``input`` and ``output`` set to
``null``: an unparsable reply is never replaced by the original.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.llm import status as st
from reflection_tuning.llm.runner import Outcome, api_key_from_env, provenance
from reflection_tuning.stages.common import Stage

ROW_FIELDS = ("instruction", "input", "output")


def teacher_row(source: Mapping[str, Any], variant: str, outcome: Outcome, *, teacher_model: str,
                template_hash: str) -> dict[str, Any]:
    """One teacher row in the CONTRIBUTING.md schema from the step's outcome for ``source``.

    Raises:
        ValueError: an unknown status, or an ok outcome without instruction/input/output.
    """
    if outcome.status not in st.STATUSES:
        raise ValueError(f"unknown status {outcome.status!r}")
    fields = outcome.fields if outcome.ok else None
    if fields is not None and any(fields.get(k) is None for k in ROW_FIELDS):
        raise ValueError(f"an ok {variant} row needs instruction, input and output")
    return {
        "id": source["id"],
        "variant": variant,
        **{k: fields[k] if fields else None for k in ROW_FIELDS},
        "source": source.get("source"),
        "critique": fields.get("critique") if fields else None,
        "status": outcome.status,
        **provenance(outcome, teacher_model, template_hash),
        "error": None if outcome.ok else outcome.reason,
    }


def require_files(stage: str, **paths: Any) -> None:
    """Check that every input file exists.

    Raises:
        UserError: the missing files, by role, with the stage to run first.
    """
    missing = [f"{role} {path}" for role, path in paths.items() if not Path(path).is_file()]
    if missing:
        raise UserError(f"{stage}: missing {', '.join(missing)}; run the earlier stages (fetch, reflect_instruction) "
                        "or check the paths")


def check_rows(rows: Iterable[dict[str, Any]], where: str, sorted_ids: bool = False) -> int:
    """Check that every row has an ``id`` and string ``instruction`` / ``output`` (and, with
    ``sorted_ids``, that the ids ascend, as every stage writes them); return how many rows
    there are (``rows`` may be a stream: it is read once).

    Raises:
        UserError: the first bad row, named by its position in ``where``.
    """
    n, last = 0, None
    for n, row in enumerate(rows, start=1):
        missing = [k for k in ("id", "instruction", "output") if not isinstance(row.get(k), str)]
        if missing:
            raise UserError(f"{where}: row {n} (id {row.get('id')}) has no string {missing}; give the rows "
                            "fetch writes (reflection-tuning fetch), or fix that row")
        if sorted_ids and last is not None and row["id"] <= last:
            raise UserError(f"{where}: row {n} (id {row['id']}) is not after id {last}; the rows must be sorted by "
                            "id with no repeat, as fetch writes them")
        last = row["id"]
    return n


def stage_main(stage: Stage, run: Callable[..., dict], inputs: type, outputs: type, argv: list[str] | None) -> int:
    """The ``main`` of a reflection stage: parse ``argv`` through ``stage`` (its sections are
    ``teacher`` and the stage's own), read the teacher key from the environment variable that
    ``teacher.api_key_env`` names, and call ``run(cfg, teacher_cfg, inputs, outputs, api_key=…)``."""
    call = stage.parse(argv)
    teacher_cfg, cfg = call.configs
    run(cfg, teacher_cfg, inputs(**call.inputs), outputs(**call.outputs),
        api_key=api_key_from_env(teacher_cfg, dict(os.environ)))
    return 0
