"""The glue of the commands that send an LLM step (``reflect_instruction``, ``reflect_response``,
``judge``, ``compress``): the endpoint's key, and the check of the rows they read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from reflection_tuning.infra.command import Call
from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.config import EndpointConfig, api_key_from_env


def api_key(call: Call) -> str | None:
    """The key of the call's endpoint section (``teacher``, ``judge``: the one whose config is an
    :class:`EndpointConfig`), read from the environment variable its ``api_key_env`` names.

    Raises:
        UserError: a remote endpoint names a variable that is not set.
    """
    section, cfg = next((s, c) for s, c in zip(call.stage.sections, call.configs) if isinstance(c, EndpointConfig))
    return api_key_from_env(cfg, dict(os.environ), section=section.name)


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
