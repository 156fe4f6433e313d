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
``finetune_baseline``, runs this same code (:mod:`reflection_tuning.train`) on the original rows; its
declaration differs in the paths only.

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

from reflection_tuning.sft import Config
from reflection_tuning.student import StudentConfig
from reflection_tuning.train import arm, train


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs) -> dict:
    """Fine-tune ``student.model`` on ``inputs.rows`` (:func:`reflection_tuning.train.train`); save it
    and write the metrics and training curves.

    Returns:
        The metrics written.
    Raises:
        UserError: a malformed row, a bad device.
    """
    return train(cfg, student, inputs.rows, outputs.model_dir, outputs.metrics, outputs.loss_plot)


STAGE = arm("finetune", __doc__, rows="data/{dataset}/selected.jsonl", model_dir="models/{dataset}/student-sft",
            invoke=lambda call: run(*call.configs, Inputs(**call.inputs), Outputs(**call.outputs)))
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
