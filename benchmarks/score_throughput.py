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
fraction, the largest |Δ loss| between the two, on CUDA the MFU (FLOPs of the work done /
seconds / peak FLOP/s), and on CPU the roofline: the measured matmul peak of this CPU on the
model's own shapes against the FLOP/s each method achieves. Each side runs ``--repeats``
times, alternating, and the medians are compared (``harness.py``).

    python benchmarks/score_throughput.py            # 32 rows, vicuna, 3 repeats: ~25 min on an idle 2-core CPU
    python benchmarks/score_throughput.py --rows 4 --repeats 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from harness import DEFAULT_MODEL, SHARED_DATA, Bench, ensure_model, matmul_peak

ALPACA = SHARED_DATA / "alpaca" / "cherry_alpaca_5_percent.json"
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
    from reflection_tuning.score.pairs import score_rows

    fields = score_rows(rows, scorer, template)
    return [f[f"loss_{t}"] for f in fields for t in ("a_given_q", "a", "q_given_a", "q")]


def flops_per_token(model) -> tuple[float, float]:
    """(FLOPs a token costs in the decoder layers, FLOPs a kept logit costs in the vocabulary projection):
    2 x the parameters each multiplies (attention over the context not counted: < 5 % at these lengths)."""
    emb = model.get_input_embeddings().weight.numel()
    layers = sum(p.numel() for p in model.parameters()) - emb
    if not model.config.tie_word_embeddings:
        layers -= model.get_output_embeddings().weight.numel()
    return 2.0 * layers, 2.0 * emb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rows", type=int, default=32, help="original rows (each scored in 4 variants)")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N]")
    p.add_argument("--dtype", default="float32", help="weights: float32 | bfloat16 (CUDA autocasts to bf16)")
    p.add_argument("--template", default="vicuna", help="the scoring template (the papers': vicuna)")
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating; the median is kept")
    p.add_argument("--bf16", action="store_true", help="also time the scorer with bf16 weights (parity printed)")
    p.add_argument("--no-share-prefix", action="store_true", help="feed every pair whole (the previous scorer)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s for MFU (default: by GPU name)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reflection_tuning.score.scorer import HFScorer
    from reflection_tuning.student import resolve_device

    device = torch.device(resolve_device(args.device))
    path = ensure_model(args.model) if args.model == DEFAULT_MODEL else args.model
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype),
                                                 attn_implementation="sdpa").to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    rows = variant_rows(args.rows)
    bench = Bench("score_throughput", {
        "model": f"{path.name} ({params / 1e6:.1f}M, {args.dtype})", "rows": f"{args.rows} x 4 variants x 4 terms",
        "template": args.template, "max_length": args.max_length, "batch_tokens": args.batch_tokens,
        "repeats": args.repeats}, device)

    def new_scorer(m):
        return HFScorer(m, tok, max_length=args.max_length, batch_tokens=args.batch_tokens, progress=False,
                        share_prefix=not args.no_share_prefix)

    scorers = {}

    def run_batched(label, m):
        scorers[label] = new_scorer(m)
        return batched(scorers[label], rows, args.template)

    sides = {"reference": lambda: reference(model, tok, rows, args.template, args.max_length),
             "batched": lambda: run_batched("batched", model)}
    if args.bf16:
        model16 = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16,
                                                       attn_implementation="sdpa").to(device).eval()
        sides["batched-bf16"] = lambda: run_batched("batched-bf16", model16)
    last = bench.alternate(sides, args.repeats)
    (ref_losses, ref_tokens), new_losses = last["reference"], last["batched"]
    t_ref, t_new = bench.median("reference"), bench.median("batched")

    def max_diff(losses):
        return max(abs(a - b) for a, b in zip(ref_losses, losses) if a is not None and b is not None)

    s = scorers["batched"].stats
    diff = max_diff(new_losses)
    print(f"reference (batch 1, 4 passes): {ref_tokens / t_ref:9.0f} tokens/s  "
          f"({ref_tokens} tokens fed, {len(ref_losses)} forwards)")
    print(f"batched scorer:                {ref_tokens / t_new:9.0f} tokens/s  "
          f"({s.tokens_forward} tokens fed, {s.tokens_prefix_reused} reused from {s.prefixes} shared prefixes, "
          f"{s.unique_pairs}/{s.pairs} unique pairs, {s.batches} batches, padding {s.padding_fraction:.1%})")
    print(f"loss parity: max |delta loss| vs reference {diff:.2e} nats over {len(ref_losses)} terms "
          f"(bound 1e-4: {'ok' if diff <= 1e-4 else 'EXCEEDED'})")
    figures = {"reference_tokens": ref_tokens, "batched_tokens_fed": s.tokens_forward,
               "batched_tokens_padded": s.tokens_padded, "prefix_tokens_reused": s.tokens_prefix_reused,
               "padding_fraction": round(s.padding_fraction, 4), "max_abs_delta_loss": diff}
    if args.bf16:
        d16 = max_diff(last["batched-bf16"])
        print(f"bf16 weights: {bench.median('batched-bf16'):.2f} s, {t_new / bench.median('batched-bf16'):.2f}x the "
              f"fp32 scorer, max |delta loss| {d16:.2e} nats (not used on CPU: above the 1e-4 bound)")
        figures["bf16_max_abs_delta_loss"] = d16
    per_token, per_logit = flops_per_token(model)
    flop_ref = per_token * ref_tokens + per_logit * ref_tokens  # every position projected on the vocabulary
    flop_new = per_token * s.tokens_padded + per_logit * s.tokens_target
    ratio = t_ref / t_new
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        for label, flop, t in (("reference", flop_ref, t_ref), ("batched", flop_new, t_new)):
            if peak:
                print(f"MFU {label}: {flop / t / (peak * 1e12):.1%} of {peak:.0f} TFLOP/s ({name})")
    else:
        peak = matmul_peak(device)
        print(f"roofline: this CPU's measured fp32 matmul peak on [1024x576]x[576x1536]: {peak:.1f} GFLOP/s; "
              f"achieved: reference {flop_ref / t_ref / 1e9:.1f} GFLOP/s, batched {flop_new / t_new / 1e9:.1f} GFLOP/s "
              f"({flop_ref / 1e12:.2f} vs {flop_new / 1e12:.2f} TFLOP of work)")
        figures.update(matmul_peak_gflops=round(peak, 1), achieved_gflops_reference=round(flop_ref / t_ref / 1e9, 1),
                       achieved_gflops_batched=round(flop_new / t_new / 1e9, 1))
        if ratio < 1.3:
            print(f"why below 1.3x: the batched scorer does {flop_ref / flop_new:.2f}x less work and runs it at "
                  f"{flop_new / t_new / 1e9:.1f} of {peak:.1f} GFLOP/s; the reference at "
                  f"{flop_ref / t_ref / 1e9:.1f}: the speed-up is bounded by the work saved x the efficiency gained")
    bench.finish(ratio, ">= 1.3", args.json, **figures)


if __name__ == "__main__":
    main()
