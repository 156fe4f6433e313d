"""One GPU check: scorer, SFT and teacher throughput on one CUDA device, in under 8 minutes.

Three sections, each timed with ``harness.py`` (machine, load, median of ``--repeats`` alternating
runs) on real Alpaca rows with the embedded SmolLM2-135M-Instruct:

- ``score``: the batched scorer against the reference loop (batch 1, four passes), in tokens/s
  and MFU (FLOPs of the work done / seconds / the GPU's dense bf16 peak), and the parity of bf16
  autocast against fp32 on the same rows: max |Δ loss| (nats), max |Δ IFD|, max |Δ r-IFD|, and
  how many of the top-10 % rows by IFD both precisions select.
- ``sft``: packed (padding-free) against padded SFT, real tokens/s (``finetune_throughput.py``).
- ``teacher``: this project's sliding window of 10 requests against the reference's batches of
  10 (``teacher_throughput.py``), through ``transformers serve --continuous-batching`` on the GPU
  (the embedded llama.cpp wheel is CPU-only; GPU users serve the teacher with vLLM or llama.cpp CUDA).

Writes every figure to one JSON file (``--json``) and prints a table. A section that fails is
recorded with its error and the others still run; a section that would start after
``--budget-s`` seconds is skipped and recorded as such.

    python benchmarks/gpu_check.py                     # on a GPU machine: ~5-7 min on one H100/H200 (estimated:
                                                       # score ~2, sft ~2, teacher ~2 incl. server start)
    python benchmarks/gpu_check.py --dry               # CPU, tiny sizes: proves the script runs (~2-4 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import traceback
from pathlib import Path

import torch
from harness import DEFAULT_MODEL, Bench, ensure_model, machine, matmul_peak

REPO = Path(__file__).resolve().parents[1]
# (full run, --dry) sizes per section
SIZES = {
    "score": {"rows": (128, 1), "parity_rows": (512, 1)},
    "sft": {"rows": (256, 2), "max_length": (1024, 64), "batch_size": (16, 2)},
    "teacher": {"rows": (40, 2), "max_tokens": (128, 4)},
}


def size(section: str, key: str, dry: bool) -> int:
    return SIZES[section][key][1 if dry else 0]


def score_section(args, device) -> dict:
    from score_throughput import PEAK_TFLOPS, flops_per_token, reference, variant_rows
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reflection_tuning.score.pairs import score_rows
    from reflection_tuning.score.scorer import HFScorer

    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32,
                                                 attn_implementation="sdpa").to(device).eval()
    rows = variant_rows(size("score", "rows", args.dry))
    bench = Bench("gpu_check/score", {"rows": f"{len(rows) // 4} x 4 variants x 4 terms", "template": args.template,
                                      "max_length": args.max_length, "batch_tokens": args.batch_tokens}, device)
    scorers = {}

    def scored(label, bf16, rows_):
        scorers[label] = HFScorer(model, tok, max_length=args.max_length, batch_tokens=args.batch_tokens,
                                  progress=False, bf16=bf16)
        return score_rows(rows_, scorers[label], args.template)

    last = bench.alternate({"reference": lambda: reference(model, tok, rows, args.template, args.max_length),
                            "batched": lambda: scored("batched", None, rows)}, args.repeats)
    ref_tokens = last["reference"][1]
    s = scorers["batched"].stats
    per_token, per_logit = flops_per_token(model)
    t_ref, t_new = bench.median("reference"), bench.median("batched")
    flop_ref = (per_token + per_logit) * ref_tokens
    flop_new = per_token * s.tokens_padded + per_logit * s.tokens_target
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), float("nan"))
        peak_label = f"{peak} TFLOP/s (datasheet, dense bf16)"
    else:
        peak, peak_label = matmul_peak(device) / 1e3, "measured fp32 matmul"

    # Parity: the same rows in fp32 and in bf16 autocast, compared as the selection sees them.
    prows = variant_rows(size("score", "parity_rows", args.dry))
    fp32, bf16 = scored("fp32", False, prows), scored("bf16", True, prows)

    def max_delta(key):
        return max((abs(a[key] - b[key]) for a, b in zip(fp32, bf16) if a[key] is not None and b[key] is not None),
                   default=float("nan"))

    ranked = [sorted(range(len(v)), key=lambda i: v[i]["ifd"] if v[i]["ifd"] is not None else float("inf"))
              for v in (fp32, bf16)]
    top = max(1, len(prows) // 10)
    overlap = len(set(ranked[0][:top]) & set(ranked[1][:top])) / top
    out = bench.finish(t_ref / t_new, ">= 1.3 on CPU; on GPU: recorded", None,
                       reference_tokens_per_s=round(ref_tokens / t_ref, 1),
                       batched_tokens_per_s=round(ref_tokens / t_new, 1),
                       mfu_reference=round(flop_ref / t_ref / (peak * 1e12), 4),
                       mfu_batched=round(flop_new / t_new / (peak * 1e12), 4), peak=peak_label,
                       padding_fraction=round(s.padding_fraction, 4), prefix_tokens_reused=s.tokens_prefix_reused,
                       parity_rows=len(prows), bf16_max_abs_delta_loss=max(
                           max_delta(f"loss_{t}") for t in ("a_given_q", "a", "q_given_a", "q")),
                       bf16_max_abs_delta_ifd=max_delta("ifd"), bf16_max_abs_delta_rifd=max_delta("rifd"),
                       bf16_top10pct_ifd_overlap=round(overlap, 4))
    return out


def sft_section(args, device) -> dict:
    from finetune_throughput import measure
    from score_throughput import ALPACA
    from transformers import AutoTokenizer

    from reflection_tuning.infra.config import section_config
    from reflection_tuning.rows import canonical
    from reflection_tuning.sft import Config, keep_trainable, training_examples

    n, max_length = size("sft", "rows", args.dry), size("sft", "max_length", args.dry)
    records = json.loads(ALPACA.read_text(encoding="utf-8"))[:n]
    rows = [canonical(r["instruction"], r.get("input", ""), r["output"], "alpaca") for r in records]
    examples = keep_trainable(training_examples(rows, "vicuna", AutoTokenizer.from_pretrained(args.model)),
                              AutoTokenizer.from_pretrained(args.model), max_length)
    base = {"max_length": max_length, "warmup_ratio": 0.0, "device": str(device)}
    batch = size("sft", "batch_size", args.dry)
    cfgs = {"padded": section_config(Config, "finetune", REPO / "params.yaml", batch_size=batch, packing=False, **base),
            "packed": section_config(Config, "finetune", REPO / "params.yaml", batch_size=max(1, batch // 4),
                                     packing=True, **base)}
    bench = Bench("gpu_check/sft", {"rows": len(examples), "max_length": max_length,
                                    "padded_batch": cfgs["padded"].batch_size,
                                    "packed_batch": cfgs["packed"].batch_size}, device)
    results = {}

    def train(name):
        results.setdefault(name, []).append(measure(str(args.model), examples, cfgs[name], args.out / "sft" / name))

    bench.alternate({name: (lambda name=name: train(name)) for name in cfgs}, args.repeats)
    # measure() times trainer.train() alone (model load excluded): the median of its tokens/s
    rate = {k: sorted(r["tokens_per_s"] for r in v)[len(v) // 2] for k, v in results.items()}
    return bench.finish(rate["packed"] / rate["padded"], ">= 1.5", None,
                        padded_tokens_per_s=rate["padded"], packed_tokens_per_s=rate["packed"],
                        real_tokens=results["packed"][-1]["real_tokens"],
                        padded_computed_tokens=results["padded"][-1]["computed_tokens"])


def teacher_section(args, device) -> dict:
    import teacher_throughput as tt

    from reflection_tuning.infra.config import section_config
    from reflection_tuning.llm.config import EndpointConfig

    n, max_tokens = size("teacher", "rows", args.dry), size("teacher", "max_tokens", args.dry)
    batch = tt.requests(n)
    base = section_config(
        EndpointConfig,
        "teacher",
        REPO / "params.yaml",
        model=str(args.model),
        max_tokens=max_tokens,
        cache_dir=None,
        timeout=1800,
        max_retries=0,
        embedded_sampling=None,  # llama.cpp's fields: transformers serve refuses them (HTTP 422)
    )
    bench = Bench("gpu_check/teacher", {"requests": n, "max_tokens": max_tokens, "in_flight": 10}, device)
    done = {}

    def go(scheme):
        seconds, completion = tt.timed(dataclasses.replace(base, max_concurrency=10), url, batch, scheme, 10)
        done.setdefault(scheme, []).append(completion / seconds)

    # the embedded llama.cpp wheel is CPU-only: on the GPU the teacher is transformers serve
    with tt.transformers_serve(str(args.model), concurrency=10, slot_tokens=2048 + max_tokens,
                               device=str(device)) as url:
        tt.timed(dataclasses.replace(base, max_concurrency=2), url, batch[:2], "window", 2)  # warm-up
        bench.alternate({"window@10": lambda: go("window"), "reference@10": lambda: go("reference")}, args.repeats)
    rate = {k: sorted(v)[len(v) // 2] for k, v in done.items()}
    return bench.finish(rate["window"] / rate["reference"], ">= 1.5", None,
                        window_completion_tokens_per_s=round(rate["window"], 1),
                        reference_completion_tokens_per_s=round(rate["reference"], 1))


SECTIONS = {"score": score_section, "sft": sft_section, "teacher": teacher_section}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes, 1 repeat: proves the script runs")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry)")
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --dry)")
    p.add_argument("--template", default="vicuna")
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--batch-tokens", type=int, default=32768)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--budget-s", type=float, default=None,
                   help="skip sections that would start after this many seconds (default 450; none with --dry)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/gpu_check.json"))
    p.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"), help="scratch for SFT checkpoints")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (1 if args.dry else 3)
    if args.budget_s is None:
        args.budget_s = float("inf") if args.dry else 450.0
    device = torch.device(args.device or ("cpu" if args.dry else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry on CPU, or on a GPU machine")
    if args.model == DEFAULT_MODEL:
        ensure_model(args.model)

    start = time.perf_counter()
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "dry": args.dry, **machine(device), "sections": {}}
    for name in args.sections.split(","):
        elapsed = time.perf_counter() - start
        if elapsed > args.budget_s:
            report["sections"][name] = {"status": f"skipped: {elapsed:.0f} s > budget {args.budget_s:.0f} s"}
            continue
        t0 = time.perf_counter()
        try:
            report["sections"][name] = {"status": "ok", **SECTIONS[name](args, device)}
        except Exception as e:  # noqa: BLE001 - one section's failure must not lose the others' figures
            traceback.print_exc()
            report["sections"][name] = {"status": f"failed: {type(e).__name__}: {e}"}
        report["sections"][name]["section_seconds"] = round(time.perf_counter() - t0, 1)
    report["total_seconds"] = round(time.perf_counter() - start, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")

    print(f"\n== gpu_check on {report.get('gpu', report['cpu'])} ({device}), {report['total_seconds']} s; "
          f"figures in {args.json}")
    keys = ("status", "ratio", "target", "reference_tokens_per_s", "batched_tokens_per_s", "mfu_reference",
            "mfu_batched", "bf16_max_abs_delta_loss", "bf16_max_abs_delta_ifd", "bf16_top10pct_ifd_overlap",
            "padded_tokens_per_s", "packed_tokens_per_s", "window_completion_tokens_per_s",
            "reference_completion_tokens_per_s", "section_seconds")
    for name, sec in report["sections"].items():
        for k in keys:
            if k in sec:
                v = sec[k]
                print(f"{name:<8} {k:<36} {v:.4g}" if isinstance(v, float) else f"{name:<8} {k:<36} {v}")
    return 0 if all(s["status"] == "ok" for s in report["sections"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
