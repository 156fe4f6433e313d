"""How much the prompt/target boundary policy moves IFD and r-IFD on real Alpaca rows.

The scorer finds the first target token from the offsets of the whole ``prefix + target``
tokenization (a token that straddles the boundary counts as prompt). The reference takes
``len(tokenizer(prefix).input_ids)`` from a separate tokenization of the prefix. Both are
computed here for every pair of ``--rows`` real rows under every template; the pairs whose
target token sets differ are scored both ways (batch size 1, fp32), and the IFD / r-IFD of
their rows compared.

Prints the machine, sizes and load (``harness.py``); ``ratio:`` is the share of pairs whose
target tokens differ between the two policies (target 0.00).

    python benchmarks/boundary_policy.py --rows 64     # ~1 min (the model runs only on differing pairs)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"
DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"


def positions_both_ways(tok, prefix: str, target: str) -> tuple[list[int], list[int], list[int]]:
    """(ids, target positions by offsets, target positions by a separate prefix tokenization)."""
    from reflection_tuning.score.scorer import plan

    enc = tok(prefix + target, return_offsets_mapping=True)
    ids = enc["input_ids"]
    by_offsets = plan(ids, enc["offset_mapping"], len(prefix), max_length=10**9).positions
    start = max(len(tok(prefix).input_ids) if prefix else 0, 1)
    return ids, by_offsets, list(range(start, len(ids)))


def mean_nll(model, ids: list[int], positions: list[int]) -> float:
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits[:-1], -1)
    pos = torch.tensor(positions)
    return -logp[pos - 1, torch.tensor(ids)[pos]].mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--templates", default="alpaca,vicuna,wizardlm,chat")
    p.add_argument("--repeats", type=int, default=3, help="runs (deterministic: the figures must not change)")
    args = p.parse_args()

    from harness import Bench

    bench = Bench("boundary_policy", {"model": args.model.name, "rows": args.rows, "templates": args.templates,
                                      "repeats": args.repeats})
    runs = bench.alternate({"both boundaries": lambda: compare(args)}, args.repeats)
    n_pairs, n_diff = runs["both boundaries"]
    # ratio: the share of pairs whose target tokens the two policies disagree on (0 = no policy effect)
    bench.finish(n_diff / n_pairs, "0.00")


def compare(args) -> tuple[int, int]:
    """Print one line per template; return (pairs, pairs with a different first target token)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reflection_tuning.score.ifd import score_fields
    from reflection_tuning.templates import scoring_pairs

    tok = AutoTokenizer.from_pretrained(args.model)
    model = None
    total_pairs = total_diff = 0
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))[: args.rows]
    for template in args.templates.split(","):
        n_pairs = n_diff = 0
        deltas = {"ifd": [], "rifd": []}
        for r in rows:
            pairs = scoring_pairs(template, r["instruction"], r.get("input", ""), r["output"], tok)
            ways = {t: positions_both_ways(tok, *pair) for t, pair in pairs.items()}
            n_pairs += len(ways)
            diff = [t for t, (_, a, b) in ways.items() if a != b]
            n_diff += len(diff)
            if not diff:
                continue  # same target tokens both ways: same losses, ΔIFD = 0
            if model is None:
                model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
            losses = [{t: mean_nll(model, ids, pos[k]) for t, (ids, *pos) in ways.items()} for k in (0, 1)]
            tokens = [{t: len(pos[k]) for t, (ids, *pos) in ways.items()} for k in (0, 1)]
            f = [score_fields(losses[k], tokens[k]) for k in (0, 1)]
            for key in deltas:
                if f[0][key] is not None and f[1][key] is not None:
                    deltas[key].append(abs(f[0][key] - f[1][key]))
        n_rows_diff = len(deltas["ifd"])
        line = (f"{template:9s}: {len(rows)} rows, {n_pairs} pairs; {n_diff} pairs ({n_diff / n_pairs:.1%}) with a "
                f"different first target token, in {n_rows_diff} rows")
        for key, ds in deltas.items():
            mean_all = sum(ds) / len(rows)
            line += (f"; |Δ{key}| max {max(ds, default=0):.2e}, mean over all rows {mean_all:.2e}"
                     + (f", over changed rows {sum(ds) / len(ds):.2e}" if ds else ""))
        print(line)
        assert all(math.isfinite(d) for ds in deltas.values() for d in ds)
        total_pairs, total_diff = total_pairs + n_pairs, total_diff + n_diff
    return total_pairs, total_diff


if __name__ == "__main__":
    main()
