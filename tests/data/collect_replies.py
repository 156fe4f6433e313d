"""Build ``tests/data/teacher_replies.jsonl``: real teacher replies with what the parser makes of them.

    python tests/data/collect_replies.py data/alpaca [more dirs …]

Reads the ``instruction``, ``response`` and ``both`` rows of reflection runs, keeps each
distinct raw reply once, and records the parser's current result as the expectation.
``tests/unit/steps/test_parse_corpus.py`` then fails whenever the parser's result on a
real reply changes: review the difference, and rerun this script when the change is right.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reflection_tuning.steps.reflect_instruction import parse_reply as parse_instruction_reply
from reflection_tuning.steps.reflect_response import parse_reply as parse_response_reply

OUT = Path(__file__).with_name("teacher_replies.jsonl")
PARSERS = {"instruction": parse_instruction_reply, "response": parse_response_reply}


def main(dirs: list[str]) -> None:
    seen: dict[tuple[str, str], dict] = {}
    if OUT.exists():  # keep what was collected before
        for line in OUT.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            seen[(r["kind"], r["raw_reply"])] = r
    for d in dirs:
        for name in ("instruction", "response", "both"):
            path = Path(d) / f"{name}.jsonl"
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if not row.get("raw_reply"):
                    continue
                kind = "instruction" if name == "instruction" else "response"
                seen.setdefault((kind, row["raw_reply"]), {
                    "kind": kind, "teacher_model": Path(row["teacher_model"]).name,
                    "finish_reason": row["finish_reason"], "raw_reply": row["raw_reply"]})
    rows = []
    for (kind, raw), r in sorted(seen.items()):
        parsed = PARSERS[kind](raw)
        rows.append({**{k: r[k] for k in ("kind", "teacher_model", "finish_reason", "raw_reply")},
                     "expected_status": parsed.status, "expected_fields": parsed.fields,
                     "expected_candidates": parsed.candidates})
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} replies -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
