"""Fine-tuning throughput: packed (padding-free) against padded batches, on the same rows.

Trains the student for one epoch over the same N real Alpaca rows, once with padded
batches of ``--batch-size`` rows and once with TRL best-fit-decreasing packing into blocks
of ``--max-length`` tokens (``--packed-batch-size`` blocks a step), through the finetune
stage's own ``build_trainer``. Prints the real (non-pad) tokens, prompt and completion,
trained per second of ``trainer.train()`` for each (the median of ``--repeats`` alternating
trainings, ``harness.py``), and the ratio packed / padded (target >= 1.5x).

    python benchmarks/finetune_throughput.py            # 32 rows, 3 repeats: ~10 min on an idle 2-core CPU
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reflection_tuning.infra.config import section_config
from reflection_tuning.rows import canonical
from reflection_tuning.sft import Config, build_trainer, keep_trainable, training_examples

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"  # the shipped values; the figures' keys on top


def measure(model_dir: str, examples: list[dict], cfg: Config, out: Path) -> dict:
    """Train once; returns real tokens, seconds, tokens/s and the padded tokens computed."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    trainer = build_trainer(cfg, model, tokenizer, examples, out)
    real = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    computed = 0
    for batch in trainer.get_train_dataloader():  # what the forward passes see, pad tokens included
        computed += batch["input_ids"].numel()
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    return {"real_tokens": real, "computed_tokens": computed, "steps": trainer.state.global_step,
            "seconds": round(seconds, 2), "tokens_per_s": round(real / seconds, 1),
            "train_loss": round(result.training_loss, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--data", default="../shared/data/alpaca/cherry_alpaca_5_percent.json")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8, help="rows per padded batch")
    parser.add_argument("--packed-batch-size", type=int, default=1, help="blocks of max-length tokens per step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="trainings of each side, alternating; median kept")
    parser.add_argument("--out", type=Path, default=Path("/tmp/finetune_throughput"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from harness import Bench

    with open(args.data, encoding="utf-8") as f:
        records = json.load(f)[: args.rows]
    rows = [canonical(r["instruction"], r.get("input", ""), r["output"], "alpaca") for r in records]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    examples = keep_trainable(training_examples(rows, "vicuna", tokenizer), tokenizer, args.max_length)
    base = {"max_length": args.max_length, "warmup_ratio": 0.0, "device": args.device}
    runs = {
        "padded": section_config(Config, "finetune", PARAMS, batch_size=args.batch_size, packing=False, **base),
        "packed": section_config(Config, "finetune", PARAMS, batch_size=args.packed_batch_size, packing=True, **base),
    }
    bench = Bench("finetune_throughput", {
        "model": args.model, "rows": f"{len(examples)} real Alpaca rows (vicuna template)",
        "max_length": args.max_length, "padded_batch": args.batch_size, "packed_batch": args.packed_batch_size,
        "repeats": args.repeats}, args.device)
    results: dict[str, list[dict]] = {}
    sides = {name: (lambda name=name, cfg=cfg: results.setdefault(name, []).append(
        measure(args.model, examples, cfg, args.out / name))) for name, cfg in runs.items()}
    bench.alternate(sides, args.repeats)  # these times include loading the model; the rates below do not
    rate = {}
    for name, rs in results.items():
        rate[name] = statistics.median(r["tokens_per_s"] for r in rs)
        r = rs[-1]
        print(f"{name:7s} {r['real_tokens']:7d} real tokens ({r['computed_tokens']} computed), {r['steps']:3d} steps, "
              f"trainer.train() median {statistics.median(x['seconds'] for x in rs):8.2f} s, "
              f"{rate[name]:8.1f} real tokens/s, loss {r['train_loss']}")
    bench.finish(rate["packed"] / rate["padded"], ">= 1.5", args.json, padded_tokens_per_s=rate["padded"],
                 packed_tokens_per_s=rate["packed"], real_tokens=results["packed"][-1]["real_tokens"])


if __name__ == "__main__":
    main()
