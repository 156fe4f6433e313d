"""A proxy scorer (Superfiltering, arXiv 2402.00530) against the student, on real Alpaca rows.

Superfiltering scores IFD with GPT-2 instead of the 7B student: about 20x faster, and the
IFD ranking it gives agrees with the student's. Here the student is the embedded
SmolLM2-135M (30 layers); the proxy is built from a config: the same architecture cut to
``--proxy-layers`` decoder layers (default 6), its weights taken from the student's
embeddings, first layers, final norm and head (a layer-dropped student: no download, and
not a random network whose IFDs would mean nothing). Both score the same ``--rows`` rows of
``cherry_alpaca_5_percent.json`` through the score stage's own path (``score_rows``,
``HFScorer``), in the same template (``--template``, default ``bare``, Superfiltering's).

Prints each model's seconds and tokens/s (target tokens scored over the time), the
Spearman rank correlation of their IFDs (and r-IFDs) over the rows both scored ok, the
overlap of their top-10 % by IFD, and ends with

    ratio: X.XX (target 5.00)        the proxy's speed-up over the student (tokens/s)
    spearman_ifd: X.XX (target 0.50)

    python benchmarks/proxy_scorer.py --rows 64 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from harness import DEFAULT_MODEL, SHARED_DATA, ensure_model

ALPACA = SHARED_DATA / "alpaca" / "cherry_alpaca_5_percent.json"
TARGET_RATIO, TARGET_SPEARMAN = 5.0, 0.5


def proxy_from_config(student, layers: int):
    """The student's architecture with ``layers`` decoder layers, weights copied where they fit."""
    from transformers import AutoModelForCausalLM

    config = student.config.__class__.from_dict({**student.config.to_dict(), "num_hidden_layers": layers})
    proxy = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    missing, unexpected = proxy.load_state_dict(student.state_dict(), strict=False)
    assert not missing, missing  # every proxy weight comes from the student; the dropped layers are unexpected
    return proxy.eval()


def timed(scorer, rows, template: str) -> tuple[list[dict], float, int]:
    from reflection_tuning.score.pairs import score_rows

    start = time.perf_counter()
    fields = score_rows(rows, scorer, template)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return fields, time.perf_counter() - start, scorer.stats.tokens_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--proxy-layers", type=int, default=6)
    parser.add_argument("--template", default="bare")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from scipy.stats import spearmanr
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reflection_tuning.score.scorer import HFScorer

    torch.manual_seed(0)
    path = ensure_model(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    student = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa").eval()
    proxy = proxy_from_config(student, args.proxy_layers)
    recs = json.loads(ALPACA.read_text(encoding="utf-8"))[: args.rows]
    rows = [{"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"]} for r in recs]

    results = {}
    for name, model in (("student", student), ("proxy", proxy)):
        scorer = HFScorer(model.to(args.device), tok, max_length=args.max_length, batch_tokens=args.batch_tokens,
                          progress=False)
        timed(scorer, rows[:4], args.template)  # warm-up
        scorer.stats.tokens_target = 0
        fields, seconds, tokens = timed(scorer, rows, args.template)
        results[name] = (fields, seconds, tokens)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{name:8s} {model.config.num_hidden_layers:2d} layers {params:6.1f} M params: {seconds:7.2f} s, "
              f"{tokens / seconds:9.1f} target tokens/s")

    corr = {}
    for key in ("ifd", "rifd"):
        pairs = [(s[key], p[key]) for s, p in zip(results["student"][0], results["proxy"][0])
                 if s[f"{key}_status"] == "ok" and p[f"{key}_status"] == "ok"]
        corr[key] = (
            spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic if len(pairs) > 2 else float("nan")
        )
        print(f"spearman {key:4s} over {len(pairs)} rows: {corr[key]:.3f}")
    ok = [i for i, (s, p) in enumerate(zip(results["student"][0], results["proxy"][0]))
          if s["ifd_status"] == p["ifd_status"] == "ok"]
    k = max(1, len(ok) // 10)
    top = [set(sorted(ok, key=lambda i: -results[m][0][i]["ifd"])[:k]) for m in ("student", "proxy")]
    print(f"top-10% by IFD ({k} rows): {len(top[0] & top[1])} shared")
    ratio = (results["proxy"][2] / results["proxy"][1]) / (results["student"][2] / results["student"][1])
    print(f"ratio: {ratio:.2f} (target {TARGET_RATIO:.2f})")
    print(f"spearman_ifd: {corr['ifd']:.2f} (target {TARGET_SPEARMAN:.2f})")


if __name__ == "__main__":
    main()
