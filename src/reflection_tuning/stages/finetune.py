"""Stage ``finetune@<dataset>``: supervised fine-tuning of the student on the selected rows.

The examples and the trainer are :mod:`reflection_tuning.sft`: the student template
(``finetune.template``, the papers' Vicuna prompt by default) around each instruction and
input, the loss on the response tokens only, and the Alpaca / Reflection-Tuning schedule
(AdamW, linear warm-up for ``warmup_ratio`` of the steps, then cosine decay).

Options: ``packing`` (TRL best-fit-decreasing packing of whole rows into blocks of
``max_length`` tokens, padding-free: no pad token is computed, and the attention of a
block stays within each row, from its ``position_ids``); ``lora_r > 0`` (a peft LoRA
adapter, merged into the weights before saving, so the output is a plain model
directory); ``gradient_checkpointing``; ``global_batch_size`` (rows per optimizer step
over all processes; the gradient accumulation is derived from it); ``preset`` (``paper``:
the papers' hyperparameters, see ``presets/finetune/``). Several GPUs: run the command
under ``accelerate launch`` (README, ``configs/accelerate/``). The baseline arm,
``finetune_baseline``, runs this same code on the original rows (its :func:`stage` differs in the paths only).

With zero selected rows (or none with a response token within ``max_length``) the
unchanged student is saved with ``train_rows = 0``, ``train_loss = null`` and a warning,
so that ``evaluate`` still runs and the pipeline completes (its deltas are then 0).

Outputs: the model and tokenizer directory, flat metrics (``train_loss``: mean over steps
of the loss in nats per response token; ``rows_in`` read (also ``selected_rows``),
``train_rows`` trained on, ``rows_too_long`` left out (``rows_in = train_rows + rows_too_long``),
``steps`` (optimizer steps), ``tokens`` and ``completion_tokens`` over all epochs,
``seconds`` of wall time), and the training curves in a DVCLive directory,
``metrics/K/finetune_dvclive/`` (``--loss-plot``): ``plots/metrics/loss.tsv`` (``step``, ``loss``:
DVCLive's step, 0 = the first optimizer step), the other logged values beside it, and
``metrics.json`` (their last values); ``params.yaml`` there is DVCLive's record of the
TrainingArguments (not a DVC output: the params are ``params.yaml``'s). With nothing to train on,
``metrics.json`` is ``{}`` and ``plots/metrics`` is empty.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.io import read_jsonl, write_metrics
from reflection_tuning.sft import Config, build_trainer, keep_trainable, no_curve, token_counts, training_examples
from reflection_tuning.stages.common import PathSpec, Section, Stage
from reflection_tuning.student import StudentConfig

log = logging.getLogger(__name__)


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs) -> dict:
    """Fine-tune ``student.model`` on ``inputs.rows``; save it and write the metrics and training curves.

    Returns:
        The metrics written.
    Raises:
        UserError: a malformed row, a bad device.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.monotonic()
    rows = read_jsonl(inputs.rows)
    tokenizer = AutoTokenizer.from_pretrained(student.model)
    model = AutoModelForCausalLM.from_pretrained(student.model, dtype=torch.float32)
    examples = training_examples(rows, cfg.template, tokenizer)
    trainable = keep_trainable(examples, tokenizer, cfg.max_length)
    if len(trainable) < len(examples):
        log.warning("%d of %d rows have no completion token within max_length=%d and are not trained on",
                    len(examples) - len(trainable), len(examples), cfg.max_length)
    trainer = (build_trainer(cfg, model, tokenizer, trainable, outputs.model_dir, outputs.loss_plot)
               if trainable else None)
    if cfg.lora_r and trainer is not None and (
        trainer.is_fsdp_enabled or getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3
    ):
        raise UserError("finetune.lora_r > 0 under FSDP or ZeRO-3: merging LoRA needs the whole weights in one "
                        "process; use configs/accelerate/ddp.yaml or deepspeed_zero2.yaml")

    metrics: dict[str, Any] = {"train_rows": 0, "train_loss": None, "steps": 0, "tokens": 0, "completion_tokens": 0}
    if trainer is None:
        # Nothing to learn from: the pipeline still completes, and evaluate reports deltas of 0.
        log.warning("no rows to train on (%s): saving the unchanged student %s", inputs.rows, student.model)
        model.save_pretrained(outputs.model_dir)
        no_curve(outputs.loss_plot)
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
                merged.save_pretrained(outputs.model_dir)
        else:
            trainer.save_model(str(outputs.model_dir))  # every process: ZeRO-3 / FSDP gather the weights
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
    tokenizer.save_pretrained(outputs.model_dir)
    # rows_in = train_rows + rows_too_long; selected_rows is the older name of rows_in
    metrics.update({"rows_in": len(examples), "selected_rows": len(examples),
                    "rows_too_long": len(examples) - len(trainable), "seconds": round(time.monotonic() - start, 3)})
    write_metrics(outputs.metrics, metrics)
    log.info("saved %s: %s", outputs.model_dir, metrics)
    return metrics


def stage(name: str, doc: str | None, rows: str, model_dir: str) -> Stage:
    """A fine-tuning stage: the ``finetune`` and ``student`` params, ``rows`` in, ``model_dir`` out,
    metrics and DVCLive directory (``loss_plot``) named after the stage. ``finetune`` and
    ``finetune_baseline`` differ only in these paths ({dataset} = K)."""
    return Stage(
        name, doc,
        sections=(Section(Config, "finetune"), Section(StudentConfig, "student")),
        inputs={"rows": PathSpec(rows, flag="input")},
        outputs={"model_dir": PathSpec(model_dir, flag="output"),
                 "metrics": f"metrics/{{dataset}}/{name}.json",
                 "loss_plot": f"metrics/{{dataset}}/{name}_dvclive"},  # DVCLive's directory
    )


STAGE = stage("finetune", __doc__, "data/{dataset}/selected.jsonl", "models/{dataset}/student-sft")
# finetune_baseline's paths have the same names: one Inputs and Outputs for both arms
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None, stage: Stage = STAGE) -> int:
    """``reflection-tuning finetune``; ``finetune_baseline`` passes its own ``stage``."""
    call = stage.parse(argv)
    cfg, student = call.configs
    run(cfg, student, Inputs(**call.inputs), Outputs(**call.outputs))
    return 0
