"""Stage ``generate@<dataset>``: the recycled-SFT student and the baseline answer the evaluation prompts.

Both models answer the first ``limit`` prompts of each test set (Vicuna, Koala, WizardLM,
LIMA, Self-Instruct: the papers' pairwise evaluation, see :mod:`reflection_tuning.generate`)
greedily, in the prompt template the student was fine-tuned with (``finetune.template``,
given on the command line as ``--train-template`` by ``dvc.yaml``), up to ``max_new_tokens``
new tokens. ``generate.baseline`` chooses the baseline: ``baseline_sft`` (as in the papers:
the same student fine-tuned on the original rows, ``models/K/baseline-sft`` from
``finetune_baseline``), ``base`` (the untuned student, ``student.model``) or a model directory.

Outputs: ``data/K/answers.jsonl`` (one row per prompt and role ``sft`` / ``baseline``:
``id``, ``set``, ``source_id``, ``instruction``, ``input``, ``prompt``, ``role``,
``generator``, ``answer``, ``finish`` (``stop`` | ``length``), ``new_tokens``), the AlpacaEval
inputs ``data/K/alpaca_eval/model_outputs.json`` (SFT) and ``reference_outputs.json``
(baseline), and ``metrics/K/generate.json`` (with ``baseline``, the ``generate.baseline`` value).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning import templates
from reflection_tuning.generate import alpaca_eval_records, generate_answers, load_prompts
from reflection_tuning.infra.command import Flag, PathSpec, Section, Stage
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_json, write_jsonl, write_metrics
from reflection_tuning.student import StudentConfig, resolve_device

log = logging.getLogger(__name__)

ROLES = ("sft", "baseline")
# generate.baseline: the papers' baseline-SFT arm, or the untuned student; anything else is a directory
BASELINE_SFT = "baseline_sft"
BASE = "base"


@dataclass(frozen=True)
class Config:
    """The ``generate:`` section (values in params.yaml; README documents each key)."""

    prompts_dir: str  # relative to the working directory
    sets: list[str]
    limit: int | None  # prompts per set, the first ones in the file; None = all
    max_new_tokens: int
    batch_size: int
    baseline: str  # baseline_sft | base | a model directory
    device: str  # auto | cpu | cuda | cuda:N (student.resolve_device checks it)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"generate.limit must be >= 1 or null, got {self.limit}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("generate.max_new_tokens and generate.batch_size must be >= 1")
        if not isinstance(self.baseline, str) or not self.baseline:
            raise ConfigError(f"generate.baseline must be {BASELINE_SFT}, {BASE} or a model directory, "
                              f"got {self.baseline!r}")


# The untuned student (student.model, generate.baseline=base) is a dep of the stage through its config.
STAGE = Stage(
    "generate", __doc__,
    sections=(Section(Config, "generate"), Section(StudentConfig, "student")),
    # baseline_sft is read for generate.baseline=baseline_sft only (baseline_model checks it there)
    inputs={"sft_model": PathSpec("models/{dataset}/student-sft", flag="model_dir"),
            "baseline_sft": PathSpec("models/{dataset}/baseline-sft", flag="baseline_dir", optional=True,
                                     must_exist=False)},
    outputs={"answers": PathSpec("data/{dataset}/answers.jsonl", flag="output"),
             "alpaca_eval_dir": "data/{dataset}/alpaca_eval",
             "metrics": "metrics/{dataset}/generate.json"},
    flags=(Flag("--train-template", "--template", dest="train_template", default=None, choices=templates.TEMPLATES,
                help="finetune.template, the prompt format of the students (absent: the params file's)"),),
    invoke=lambda call: run(call.configs[0], train_template(call.args.train_template, call.params),
                            Inputs(**call.inputs), Outputs(**call.outputs), Path(call.configs[1].model),
                            dataset=call.dataset or "student"),
)
Inputs, Outputs = STAGE.io(__name__)


def baseline_model(choice: str, inputs: Inputs, base_model: Path) -> Path:
    """The model directory of ``generate.baseline``: ``baseline_sft`` (``inputs.baseline_sft``),
    ``base`` (``base_model``, the untuned student) or ``choice`` itself, a directory.

    Raises:
        UserError: ``baseline_sft`` without its directory (no ``--dataset`` and no ``--baseline-dir``,
            or ``finetune_baseline`` has not run).
    """
    if choice == BASELINE_SFT:
        if inputs.baseline_sft is None or not Path(inputs.baseline_sft).exists():
            raise UserError(f"generate.baseline={BASELINE_SFT} needs the baseline-SFT model: --dataset K after "
                            f"finetune_baseline@K, or --baseline-dir (or set generate.baseline to {BASE} or a "
                            f"model directory); not found: {inputs.baseline_sft}")
        return Path(inputs.baseline_sft)
    return Path(base_model) if choice == BASE else Path(choice)


def generator_names(dataset: str, baseline_model: Path, baseline: str = BASELINE_SFT) -> dict[str, str]:
    """The ``generator`` of each role in the AlpacaEval files: ``<dataset>-student-sft``, and
    ``<dataset>-baseline-sft`` for the baseline arm, else the baseline directory's name."""
    name = f"{dataset}-baseline-sft" if baseline == BASELINE_SFT else Path(baseline_model).name
    return {"sft": f"{dataset}-student-sft", "baseline": name}


def run(cfg: Config, template: str, inputs: Inputs, outputs: Outputs, base_model: Path,
        dataset: str = "student") -> dict[str, Any]:
    """Generate both models' answers; write the answers, the AlpacaEval files and the metrics.

    Args:
        base_model: the untuned student (``student.model``), the baseline of ``generate.baseline=base``.
        template: the student prompt template (``templates.TEMPLATES``): ``finetune.template``,
            given on the command line (``--train-template``) by ``dvc.yaml``.
        dataset: names the SFT model in the AlpacaEval ``generator`` field.
    Returns:
        The metrics written.
    Raises:
        UserError: an unknown set, a missing prompt file or model directory, a bad device,
            ``baseline_sft`` without its directory.
        ValueError: an unknown template.
    """
    start = time.monotonic()
    sets = [cfg.sets] if isinstance(cfg.sets, str) else list(cfg.sets)
    prompts, rejects = load_prompts(cfg.prompts_dir, sets, cfg.limit)
    for r in rejects:
        log.warning("%s line %d rejected: %s", r["set"], r["line"], r["reason"])
    device = resolve_device(cfg.device)
    baseline = baseline_model(cfg.baseline, inputs, base_model)
    names = generator_names(dataset, baseline, cfg.baseline)
    rows: list[dict[str, Any]] = []
    by_role: dict[str, list[dict[str, Any]]] = {}
    from transformers import AutoTokenizer

    for role, model in zip(ROLES, (inputs.sft_model, baseline), strict=True):
        tokenizer = AutoTokenizer.from_pretrained(model) if template == "chat" else None
        texts = [templates.prompt(template, p["instruction"], p["input"], tokenizer) for p in prompts]
        log.info("generate: %s (%s) answers %d prompts", role, model, len(texts))
        answers = generate_answers(model, texts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                                   device=device)
        by_role[role] = [{**p, "role": role, "generator": names[role], "answer": a.text, "finish": a.finish,
                          "new_tokens": a.tokens} for p, a in zip(prompts, answers, strict=True)]
        rows += by_role[role]
    write_jsonl(outputs.answers, rows, sort_by=("id", "role"))
    write_json(outputs.alpaca_eval_dir / "model_outputs.json", alpaca_eval_records(by_role["sft"], names["sft"]))
    write_json(outputs.alpaca_eval_dir / "reference_outputs.json",
               alpaca_eval_records(by_role["baseline"], names["baseline"]))
    metrics: dict[str, Any] = {"baseline": cfg.baseline, "prompts": len(prompts), "rejected": len(rejects)}
    for s in sets:
        metrics[f"prompts_{s}"] = sum(p["set"] == s for p in prompts)
    for role, rs in by_role.items():
        metrics[f"{role}_stop"] = sum(r["finish"] == "stop" for r in rs)
        metrics[f"{role}_length"] = sum(r["finish"] == "length" for r in rs)
        metrics[f"{role}_empty"] = sum(not r["answer"] for r in rs)
        metrics[f"{role}_new_tokens_mean"] = sum(r["new_tokens"] for r in rs) / len(rs) if rs else None
    metrics["seconds"] = round(time.monotonic() - start, 3)
    write_metrics(outputs.metrics, metrics)
    log.info("generate: %d prompts x 2 models in %.1f s", len(prompts), metrics["seconds"])
    return metrics


def train_template(given: str | None, params: dict[str, Any]) -> str:
    """The prompt format the student was fine-tuned in: ``--train-template`` (``dvc.yaml`` passes
    ``${finetune.template}``), else the ``finetune.template`` of the params file.

    Raises:
        UserError: neither gives one.
    """
    template = given or (params.get("finetune") or {}).get("template")
    if not template:
        raise UserError("generate: give --train-template (the finetune.template the student was trained in)")
    if template not in templates.TEMPLATES:
        raise UserError(f"generate: unknown template {template!r}; expected one of {templates.TEMPLATES}")
    return template


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
