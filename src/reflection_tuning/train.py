"""One fine-tuning run, what both arms of the comparison run (the stages ``finetune`` on the
selected rows and ``finetune_baseline`` on the original rows): the rows in; the model and
tokenizer, the metrics and the training curves out. The examples and the trainer are
:mod:`reflection_tuning.sft`; the stages' docstrings describe the outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reflection_tuning.infra.command import Call, PathSpec, Section, Stage
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl, write_metrics
from reflection_tuning.sft import Config, build_trainer, keep_trainable, no_curve, token_counts, training_examples
from reflection_tuning.student import StudentConfig

log = logging.getLogger(__name__)


def arm(name: str, doc: str | None, rows: str, model_dir: str, invoke: Callable[[Call], object]) -> Stage:
    """The declaration of a fine-tuning arm (the stages ``finetune`` and ``finetune_baseline``):
    the ``finetune`` and ``student`` sections, ``rows`` in (``--input``), the model directory
    ``model_dir`` out (``--output``), and the metrics and DVCLive directory named after ``name``.
    The arms differ in their rows and model directory only."""
    return Stage(
        name, doc,
        sections=(Section(Config, "finetune"), Section(StudentConfig, "student")),
        inputs={"rows": PathSpec(rows, flag="input")},
        outputs={"model_dir": PathSpec(model_dir, flag="output"),
                 "metrics": f"metrics/{{dataset}}/{name}.json",
                 "loss_plot": f"metrics/{{dataset}}/{name}_dvclive"},  # DVCLive's directory
        invoke=invoke,
    )


def train(cfg: Config, student: StudentConfig, rows_path: Path, model_dir: Path, metrics_path: Path,
          live_dir: Path) -> dict:
    """Fine-tune ``student.model`` on the rows of ``rows_path``; save it to ``model_dir``, write the
    metrics to ``metrics_path`` and the training curves to the DVCLive directory ``live_dir``.

    Returns:
        The metrics written.
    Raises:
        UserError: a malformed row, a bad device.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.monotonic()
    rows = read_jsonl(rows_path)
    tokenizer = AutoTokenizer.from_pretrained(student.model)
    model = AutoModelForCausalLM.from_pretrained(student.model, dtype=torch.float32)
    examples = training_examples(rows, cfg.template, tokenizer)
    trainable = keep_trainable(examples, tokenizer, cfg.max_length)
    if len(trainable) < len(examples):
        log.warning("%d of %d rows have no completion token within max_length=%d and are not trained on",
                    len(examples) - len(trainable), len(examples), cfg.max_length)
    trainer = (build_trainer(cfg, model, tokenizer, trainable, model_dir, live_dir)
               if trainable else None)
    if cfg.lora_r and trainer is not None and (
        trainer.is_fsdp_enabled or getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3
    ):
        raise UserError("finetune.lora_r > 0 under FSDP or ZeRO-3: merging LoRA needs the whole weights in one "
                        "process; use configs/accelerate/ddp.yaml or deepspeed_zero2.yaml")

    metrics: dict[str, Any] = {"train_rows": 0, "train_loss": None, "steps": 0, "tokens": 0, "completion_tokens": 0}
    if trainer is None:
        # Nothing to learn from: the pipeline still completes, and evaluate reports deltas of 0.
        log.warning("no rows to train on (%s): saving the unchanged student %s", rows_path, student.model)
        model.save_pretrained(model_dir)
        no_curve(live_dir)
    else:
        tokens, completion_tokens = token_counts(trainer.train_dataset)
        log.info(
            "fine-tuning %s on %d rows (%d tokens an epoch, %d in the loss, %d sequences%s), %s epochs, "
            "%d x %d x %d rows a step, device %s",
            student.model, len(trainable), tokens, completion_tokens, len(trainer.train_dataset),
            " packed" if cfg.packing else "", cfg.epochs, cfg.batch_size, trainer.args.gradient_accumulation_steps,
            trainer.args.world_size, trainer.args.device,
        )
        result = trainer.train()
        if cfg.lora_r:
            # a plain model directory, so that evaluate (and any consumer) needs no peft
            merged = trainer.model.merge_and_unload()
            if trainer.is_world_process_zero():
                merged.save_pretrained(model_dir)
        else:
            trainer.save_model(str(model_dir))  # every process: ZeRO-3 / FSDP gather the weights
        metrics = {
            "train_rows": len(trainable),
            "train_loss": float(result.training_loss),
            "steps": int(trainer.state.global_step),
            "tokens": round(tokens * cfg.epochs),
            "completion_tokens": round(completion_tokens * cfg.epochs),
            "sequences": len(trainer.train_dataset),
            "gradient_accumulation_steps": int(trainer.args.gradient_accumulation_steps),
            "world_size": int(trainer.args.world_size),
        }
    if trainer is not None and not trainer.is_world_process_zero():
        return metrics  # under `accelerate launch`, the first process writes the outputs
    tokenizer.save_pretrained(model_dir)
    # rows_in = train_rows + rows_too_long; selected_rows is the older name of rows_in
    metrics.update({"rows_in": len(examples), "selected_rows": len(examples),
                    "rows_too_long": len(examples) - len(trainable), "seconds": round(time.monotonic() - start, 3)})
    write_metrics(metrics_path, metrics)
    log.info("saved %s: %s", model_dir, metrics)
    return metrics
