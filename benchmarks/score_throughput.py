"""Throughput of the batched student scorer against the reference loop, on real Alpaca rows.

The reference is the tianyi-lab scoring loop (Cherry_LLM ``cherry_seletion/data_analysis.py``,
Reflection_Tuning ``selection_code``): batch size 1, one forward per perplexity term, four
separate passes (PPL(A|Q), PPL(A), PPL(Q|A'), PPL(Q)) per row and variant, no deduplication,
the boundary at ``len(encode(prefix))`` and the loss from ``model(..., labels=...)``.

Both score the same ``--rows`` real rows from ``cherry_alpaca_5_percent.json`` in four
variants built from real texts, as the stage test does: ``original`` (Q, A), ``instruction``
(another row's Q and A), ``response`` (Q, a third row's A) and ``both`` (the instruction
variant's Q, a fourth row's A). So ``response`` shares "Q alone" with ``original``, and
``both`` shares it with ``instruction``, as reflected variants do in the pipeline.

Prints seconds, tokens/s (the reference's token count over each method's time, so the
ratio is the speed-up on the same work), the tokens each method actually fed, the padding
fraction, the largest |Δ loss| between the two, and on CUDA the MFU
(2 × parameters × tokens fed / seconds / peak FLOP/s).

    python benchmarks/score_throughput.py --rows 32 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"
DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"
# Dense bf16 tensor-core peaks, TFLOP/s (NVIDIA datasheets, SXM parts).
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}


def variant_rows(n: int) -> list[dict]:
    """4n score inputs: the four variants of the first n real rows, built from rows n..4n-1."""
    recs = json.loads(ALPACA.read_text(encoding="utf-8"))[: 4 * n]
    out = []
    for k in range(n):
        o, ins, r2, r3 = recs[k], recs[n + k], recs[2 * n + k], recs[3 * n + k]
        out += [dict(o, variant="original"), dict(ins, variant="instruction"),
                dict(o, output=r2["output"], variant="response"), dict(ins, output=r3["output"], variant="both")]
    return [{"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"],
             "variant": r["variant"]} for r in out]


def ensure_model(path: Path) -> Path:
    if not (path / "config.json").exists():
        from reflection_tuning.stages.models import Config, Outputs, run

        print(f"building the embedded model into {path} (models stage)")
        run(Config(), Outputs(model_dir=path, metrics=path.parent / "models_benchmark.json"))
    return path


def reference(model, tok, rows: list[dict], template: str, max_length: int) -> tuple[list[float], int]:
    """The reference loop: per row, four batch-size-1 forwards. Returns (losses, tokens fed)."""
    from reflection_tuning.templates import scoring_pairs

    device = next(model.parameters()).device
    losses, fed = [], 0
    for r in rows:
        for prefix, target in scoring_pairs(template, r["instruction"], r["input"], r["output"], tok).values():
            ids = tok(prefix + target, truncation=True, max_length=max_length, return_tensors="pt").input_ids
            start = len(tok(prefix).input_ids) if prefix else 0
            labels = ids.clone()
            labels[:, :start] = -100
            with torch.no_grad(), autocast(device):
                losses.append(model(ids.to(device), labels=labels.to(device)).loss.item())
            fed += ids.shape[1]
    return losses, fed


def autocast(device):
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def batched(scorer, rows: list[dict], template: str) -> list[float]:
    from reflection_tuning.stages.score import score_rows

    fields = score_rows(rows, scorer, template)
    return [f[f"loss_{t}"] for f in fields for t in ("a_given_q", "a", "q_given_a", "q")]


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rows", type=int, default=32, help="original rows (each scored in 4 variants)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--dtype", default="float32", help="weights: float32 | bfloat16 (CUDA autocasts to bf16)")
    p.add_argument("--template", default="alpaca")
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=1, help="alternate the two methods this often; best time kept")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s for MFU (default: by GPU name)")
    args = p.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reflection_tuning.scoring.scorer import HFScorer
    from reflection_tuning.student import resolve_device

    device = torch.device(resolve_device(args.device))
    path = ensure_model(args.model) if args.model == DEFAULT_MODEL else args.model
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype),
                                                 attn_implementation="sdpa").to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    rows = variant_rows(args.rows)
    print(f"model {path.name}: {params / 1e6:.1f}M parameters, {args.dtype}, {device}, "
          f"{torch.get_num_threads()} threads; {args.rows} rows x 4 variants x 4 terms")

    t_ref = t_new = float("inf")
    for _ in range(args.repeats):
        sync(device)
        t0 = time.perf_counter()
        ref_losses, ref_tokens = reference(model, tok, rows, args.template, args.max_length)
        sync(device)
        t_ref = min(t_ref, time.perf_counter() - t0)
        scorer = HFScorer(model, tok, max_length=args.max_length, batch_tokens=args.batch_tokens, progress=False)
        t0 = time.perf_counter()
        new_losses = batched(scorer, rows, args.template)
        sync(device)
        t_new = min(t_new, time.perf_counter() - t0)

    s = scorer.stats
    diff = max(abs(a - b) for a, b in zip(ref_losses, new_losses) if a is not None and b is not None)
    print(f"reference (batch 1, 4 passes): {t_ref:8.2f} s  {ref_tokens / t_ref:9.0f} tokens/s  "
          f"({ref_tokens} tokens fed, {len(ref_losses)} forwards)")
    print(f"batched scorer:                {t_new:8.2f} s  {ref_tokens / t_new:9.0f} tokens/s  "
          f"({s.tokens_forward} tokens fed, {s.unique_pairs}/{s.pairs} unique pairs, {s.batches} batches, "
          f"padding {s.padding_fraction:.1%})")
    print(f"speed-up: {t_ref / t_new:.2f}x   max |delta loss| vs reference: {diff:.2e} nats")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak:
            for label, tokens, t in (("reference", ref_tokens, t_ref), ("batched", s.tokens_forward, t_new)):
                print(f"MFU {label}: {2 * params * tokens / t / (peak * 1e12):.1%} of {peak:.0f} TFLOP/s ({name})")
        else:
            print(f"MFU: unknown peak for {name}; pass --peak-tflops")
    elif args.peak_tflops:
        print(f"MFU batched: {2 * params * s.tokens_forward / t_new / (args.peak_tflops * 1e12):.1%}")


if __name__ == "__main__":
    main()
