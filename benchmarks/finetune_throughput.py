"""Fine-tuning throughput: packed (padding-free) against padded batches, on the same rows.

Trains the student for one epoch over the same N real Alpaca rows, once with padded
batches of ``--batch-size`` rows and once with TRL best-fit-decreasing packing into blocks
of ``--max-length`` tokens (``--packed-batch-size`` blocks a step), through the finetune
stage's own ``build_trainer``. Prints the real (non-pad) tokens, prompt and completion,
trained per second of ``trainer.train()`` for each, and the ratio packed / padded
(target >= 1.5x).

    python benchmarks/finetune_throughput.py --rows 24
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reflection_tuning.rows import canonical
from reflection_tuning.stages.finetune import Config, build_trainer, keep_trainable, training_examples


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
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8, help="rows per padded batch")
    parser.add_argument("--packed-batch-size", type=int, default=1, help="blocks of max-length tokens per step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("/tmp/finetune_throughput"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with open(args.data, encoding="utf-8") as f:
        records = json.load(f)[: args.rows]
    rows = [canonical(r["instruction"], r.get("input", ""), r["output"], "alpaca") for r in records]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    examples = keep_trainable(training_examples(rows, "vicuna", tokenizer), tokenizer, args.max_length)
    base = {"max_length": args.max_length, "warmup_ratio": 0.0, "device": args.device}
    runs = {
        "padded": Config(batch_size=args.batch_size, packing=False, **base),
        "packed": Config(batch_size=args.packed_batch_size, packing=True, **base),
    }
    results = {name: measure(args.model, examples, cfg, args.out / name) for name, cfg in runs.items()}
    print(f"{len(examples)} rows, model {args.model}, max_length {args.max_length}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for name, r in results.items():
        print(f"{name:7s} {r['real_tokens']:7d} real tokens ({r['computed_tokens']} computed), {r['steps']:3d} steps, "
              f"{r['seconds']:8.2f} s, {r['tokens_per_s']:8.1f} tokens/s, loss {r['train_loss']}")
    ratio = results["packed"]["tokens_per_s"] / results["padded"]["tokens_per_s"]
    print(f"packed / padded: {ratio:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
