"""Stage ``finetune_baseline@<dataset>``: the baseline arm, the student fine-tuned on the original rows.

The papers' comparison (Reflection-Tuning, arXiv 2310.11716, Sec. 4; Selective
Reflection-Tuning, arXiv 2402.10110, Sec. 4) is between the student fine-tuned on the
recycled data and the same student fine-tuned on the original data (their Alpaca-7B and
WizardLM-7B). This stage trains that baseline: the same student (``student.model``), the
same ``finetune`` params and code (:func:`reflection_tuning.stages.finetune.run`), on every
original row of the same samples (``data/K/original.jsonl``, written by ``fetch``). It reads
nothing that ``select`` writes, so a change of selection never retrains it.

Outputs: ``models/K/baseline-sft``, ``metrics/K/finetune_baseline.json`` (the keys of
``finetune.json``) and the DVCLive directory ``metrics/K/finetune_baseline_dvclive/`` (its
training curves, laid out as ``finetune``'s).
"""

from __future__ import annotations

from reflection_tuning.stages import finetune

STAGE = finetune.stage("finetune_baseline", __doc__, "data/{dataset}/original.jsonl", "models/{dataset}/baseline-sft")


def main(argv: list[str] | None = None) -> int:
    return finetune.main(argv, STAGE)
