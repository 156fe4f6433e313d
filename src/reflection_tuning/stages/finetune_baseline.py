"""Stage ``finetune_baseline@<dataset>``: the baseline arm, the student fine-tuned on the original rows.

The papers' comparison (Reflection-Tuning, arXiv 2310.11716, Sec. 4; Selective
Reflection-Tuning, arXiv 2402.10110, Sec. 4) is between the student fine-tuned on the
recycled data and the same student fine-tuned on the original data (their Alpaca-7B and
WizardLM-7B). This stage trains that baseline: the same student (``student.model``), the
same ``finetune`` params and code (:func:`reflection_tuning.train.train`), on every
original row of the same samples (``data/K/original.jsonl``, written by ``fetch``). It reads
nothing that ``select`` writes, so a change of selection never retrains it.

Outputs: ``models/K/baseline-sft``, ``metrics/K/finetune_baseline.json`` (the keys of
``finetune.json``) and the DVCLive directory ``metrics/K/finetune_baseline_dvclive/`` (its
training curves, laid out as ``finetune``'s).
"""

from __future__ import annotations

from reflection_tuning.sft import Config
from reflection_tuning.student import StudentConfig
from reflection_tuning.train import arm, train


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs) -> dict:
    """Fine-tune ``student.model`` on ``inputs.rows``, the original rows, as ``finetune`` does on the
    selected ones (:func:`reflection_tuning.train.train`). Returns the metrics written."""
    return train(cfg, student, inputs.rows, outputs.model_dir, outputs.metrics, outputs.loss_plot)


STAGE = arm("finetune_baseline", __doc__,
            rows="data/{dataset}/original.jsonl", model_dir="models/{dataset}/baseline-sft",
            invoke=lambda call: run(*call.configs, Inputs(**call.inputs), Outputs(**call.outputs)))
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
