"""The glue of the commands that send an LLM step (``reflect_instruction``, ``reflect_response``,
``judge``, ``compress``): their input checks and their ``main``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.llm.config import api_key_from_env
from reflection_tuning.stages.common import Stage


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


def llm_stage_main(stage: Stage, run: Callable[..., dict], inputs: type, outputs: type,
                   argv: list[str] | None) -> int:
    """The ``main`` of a stage that sends an LLM step: parse ``argv`` through ``stage`` (its
    sections are the endpoint, ``teacher`` or ``judge``, then the stage's own), read the key from
    the environment variable that the endpoint's ``api_key_env`` names, and call
    ``run(cfg, endpoint_cfg, inputs, outputs, api_key=…)``."""
    call = stage.parse(argv)
    endpoint_cfg, cfg = call.configs
    run(cfg, endpoint_cfg, inputs(**call.inputs), outputs(**call.outputs),
        api_key=api_key_from_env(endpoint_cfg, dict(os.environ), section=stage.sections[0].name))
    return 0
