"""Supervised fine-tuning with TRL: the ``finetune:`` section, the prompt-completion
examples, and the ``SFTTrainer`` built from them (one run is :mod:`reflection_tuning.train`,
which the stages ``finetune`` and ``finetune_baseline`` run).

Each row becomes a prompt-completion example: the prompt is the student template
(``finetune.template``) filled with the instruction and input, the completion is the output
followed by the EOS token, and TRL computes the loss on the completion tokens only (prompt
labels are -100). The schedule is AdamW, linear warm-up for ``warmup_ratio`` of the steps,
then cosine decay; no checkpoint is written, nothing is pushed. The training curves go
to DVCLive through transformers' ``DVCLiveCallback`` (:func:`build_trainer`'s ``live_dir``):
``plots/metrics/loss.tsv`` (``step``, ``loss``) and the other logged values, one row per
optimizer step, and ``metrics.json`` (the last values), which ``dvc exp show`` and ``dvc plots
show`` read through ``dvc.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reflection_tuning import templates
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.student import resolve_device

log = logging.getLogger(__name__)


# The prompt formats a student can be fine-tuned in (templates.TEMPLATES, written once there).
Template = Literal[templates.TEMPLATES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Config:
    """The ``finetune:`` section (values in params.yaml; README documents each key)."""

    preset: str | None  # a file of presets/finetune/ whose values replace the params ones
    template: Template
    epochs: float
    learning_rate: float
    batch_size: int  # rows (packed blocks with `packing`) per device per forward pass
    gradient_accumulation_steps: int  # used when global_batch_size is null
    global_batch_size: int | None  # rows per optimizer step over all processes
    max_length: int  # tokens of prompt + completion; longer examples are cut at the end
    weight_decay: float
    warmup_ratio: float  # fraction of the optimizer steps, in [0, 1)
    packing: bool  # best-fit-decreasing packing into blocks of max_length, padding-free
    gradient_checkpointing: bool
    lora_r: int  # LoRA rank; 0 = full fine-tuning
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: str | list[str]
    seed: int
    device: str  # auto | cpu | cuda | cuda:N (student.resolve_device checks it)

    def __post_init__(self) -> None:
        if self.lora_r < 0:
            raise ConfigError(f"finetune.lora_r must be >= 0 (0 = no LoRA), got {self.lora_r}")
        if self.global_batch_size is not None and self.global_batch_size < 1:
            raise ConfigError(f"finetune.global_batch_size must be >= 1 or null, got {self.global_batch_size}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"finetune.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


def training_examples(rows: Sequence[dict[str, Any]], template: str, tokenizer: Any) -> list[dict[str, str]]:
    """Prompt-completion examples: ``templates.prompt(...)`` and ``templates.answer(...) + eos``.

    Raises:
        UserError: a row without a string ``instruction`` or ``output`` (names its ``id``).
        ValueError: an unknown template (see :func:`templates.prompt`).
    """
    examples = []
    for row in rows:
        instruction, output = row.get("instruction"), row.get("output")
        if not isinstance(instruction, str) or not isinstance(output, str):
            raise UserError(f"selected row {row.get('id')!r} has no instruction/output text; re-run select")
        prompt = templates.prompt(template, instruction, row.get("input") or "", tokenizer)
        examples.append({"prompt": prompt, "completion": templates.answer(template, output) + tokenizer.eos_token})
    return examples


def gradient_accumulation(global_batch_size: int, batch_size: int, world_size: int) -> int:
    """Accumulation steps so that ``batch_size x steps x world_size == global_batch_size`` (rows).

    Raises:
        UserError: the global batch is not a multiple of ``batch_size x world_size``.
    """
    per_step = batch_size * world_size
    if global_batch_size % per_step:
        raise UserError(
            f"finetune.global_batch_size={global_batch_size} is not a multiple of batch_size x processes "
            f"= {batch_size} x {world_size}; change batch_size or the number of processes"
        )
    return global_batch_size // per_step


def keep_trainable(examples: list[dict[str, str]], tokenizer: Any, max_length: int) -> list[dict[str, str]]:
    """The examples whose prompt leaves at least one completion token within ``max_length``.

    Done before TRL, which drops such rows only without packing (with packing they would
    become blocks with no loss-bearing token).
    """
    lengths = tokenizer([e["prompt"] for e in examples])["input_ids"] if examples else []
    return [e for e, ids in zip(examples, lengths, strict=True) if len(ids) < max_length]


def lora_config(cfg: Config) -> Any:
    """The peft ``LoraConfig`` of ``cfg``, or ``None`` when ``lora_r`` is 0."""
    if cfg.lora_r == 0:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")


def _checkpointing_field(config_cls: type) -> str:
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing (the old
    # name warns); older 5.x releases only have the old one.
    names = {f.name for f in dataclasses.fields(config_cls)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def build_trainer(cfg: Config, model: Any, tokenizer: Any, examples: list[dict[str, str]], output_dir: Path,
                  live_dir: Path | None = None) -> Any:
    """A TRL ``SFTTrainer`` over ``examples`` with every hyperparameter from ``cfg``.

    ``live_dir``: the DVCLive directory the training curves are logged to (none when ``None``).
    DVCLive's ``step`` counts the logged records, one per optimizer step: step 0 is the first
    optimizer step. The summary record at the end of training goes to its own files
    (``train/loss.tsv`` holds the mean loss, ``train/runtime.tsv`` …), not into the curve.

    Raises:
        UserError: see :func:`resolve_device` and :func:`gradient_accumulation`.
    """
    import datasets
    import torch
    from transformers import PrinterCallback, TrainerCallback
    from transformers.integrations import DVCLiveCallback
    from trl import SFTConfig, SFTTrainer

    class LossLogger(TrainerCallback):
        """Logs the loss and learning rate of each logged step."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                log.info("step %d/%d: loss %.4f, lr %.3g", state.global_step, state.max_steps,
                         float(logs["loss"]), float(logs.get("learning_rate", math.nan)))

    device = resolve_device(cfg.device)
    if device.startswith("cuda:"):
        torch.cuda.set_device(torch.device(device))  # the Trainer uses the current CUDA device
    on_cuda = device.startswith("cuda")
    args = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the steps
        lr_scheduler_type="cosine",
        seed=cfg.seed,
        data_seed=cfg.seed,
        completion_only_loss=True,
        # "bfd" keeps rows whole and implies padding-free batches; transformers derives the
        # per-row (block-diagonal) causal mask from position_ids for SDPA/eager attention,
        # and passes cu_seq_lens to flash-attention.
        packing=cfg.packing,
        packing_strategy="bfd",
        logging_steps=1,  # one loss point per optimizer step for the plot
        save_strategy="no",
        report_to=[],
        push_to_hub=False,
        use_cpu=not on_cuda,
        # bf16 autocast only where the hardware has it; CPU trains in float32 (TRL defaults bf16 on).
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        disable_tqdm=True,
        # off by default: small students fit, and recomputing activations costs ~30% more time
        **{_checkpointing_field(SFTConfig): cfg.gradient_checkpointing},
    )
    if cfg.global_batch_size is not None:
        # the world size is known once the (accelerate) distributed state is set up by the args
        args.gradient_accumulation_steps = gradient_accumulation(cfg.global_batch_size, cfg.batch_size,
                                                                 args.world_size)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
    )
    # The Trainer prints every log record to stdout; send the losses to our logger instead.
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LossLogger())
    if live_dir is not None:
        # transformers' DVCLive logger, as report_to="dvclive" adds it, but given its Live: that one
        # writes ./dvclive, the same directory for both arms, and saves a DVC experiment of its own.
        # dvc.yaml declares the files, so DVCLive writes none; only the first process logs.
        trainer.add_callback(DVCLiveCallback(live=live_logger(live_dir) if args.process_index == 0 else None))
    return trainer


def live_logger(live_dir: Path) -> Any:
    """A ``dvclive.Live`` writing to ``live_dir`` (its earlier files removed): no ``dvc.yaml`` of
    its own, no DVC experiment saved (``dvc exp run`` records the pipeline's)."""
    from dvclive import Live

    return Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False)


def no_curve(live_dir: Path) -> None:
    """The DVCLive directory of a run that trained nothing: ``metrics.json`` ``{}`` and an empty
    ``plots/metrics``, so the stage's DVC outputs exist."""
    from dvclive.plots import Metric

    logger = live_logger(live_dir)
    logger.end()
    (Path(logger.plots_dir) / Metric.subfolder).mkdir(parents=True, exist_ok=True)


def token_counts(dataset: Any) -> tuple[int, int]:
    """(all tokens, loss-bearing tokens) of one pass over the prepared training dataset."""
    tokens = sum(len(ids) for ids in dataset["input_ids"])
    if "labels" in dataset.column_names:
        completion = sum(sum(1 for t in labels if t != -100) for labels in dataset["labels"])
    else:
        completion = tokens
    return tokens, completion
