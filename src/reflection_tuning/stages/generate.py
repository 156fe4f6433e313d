"""Stage ``generate@<dataset>``: the recycled-SFT student and the baseline answer the evaluation prompts.

Both models answer the first ``limit`` prompts of each test set (Vicuna, Koala, WizardLM,
LIMA, Self-Instruct: the papers' pairwise evaluation, see :mod:`reflection_tuning.generate`)
greedily, in the prompt template the student was fine-tuned with (``finetune.template``),
up to ``max_new_tokens`` new tokens. ``generate.baseline`` chooses the baseline:
``baseline_sft`` (the default, as in the papers: the same student fine-tuned on the original
rows, ``models/K/baseline-sft`` from ``finetune_baseline``), ``base`` (the untuned student,
``student.model``) or a model directory.

Outputs: ``data/K/answers.jsonl`` (one row per prompt and role ``sft`` / ``baseline``:
``id``, ``set``, ``source_id``, ``instruction``, ``input``, ``prompt``, ``role``,
``generator``, ``answer``, ``finish`` (``stop`` | ``length``), ``new_tokens``), the AlpacaEval
inputs ``data/K/alpaca_eval/model_outputs.json`` (SFT) and ``reference_outputs.json``
(baseline), and ``metrics/K/generate.json`` (with ``baseline``, the ``generate.baseline`` value).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflection_tuning import templates
from reflection_tuning.config import ConfigError, load_config
from reflection_tuning.generate import PROMPT_SETS, alpaca_eval_records, generate_answers, load_prompts
from reflection_tuning.io import write_json, write_jsonl, write_metrics
from reflection_tuning.errors import UserError
from reflection_tuning.stages.common import Section, parse_stage_args, resolve_paths, stage_parser
from reflection_tuning.stages.finetune import PATHS as FINETUNE_PATHS
from reflection_tuning.stages.finetune import Config as FinetuneConfig
from reflection_tuning.stages.finetune_baseline import PATHS as BASELINE_PATHS
from reflection_tuning.student import StudentConfig, resolve_device

log = logging.getLogger(__name__)

ROLES = ("sft", "baseline")
# generate.baseline: the papers' baseline-SFT arm, or the untuned student; anything else is a directory
BASELINE_SFT = "baseline_sft"
BASE = "base"


@dataclass(frozen=True)
class Config:
    """The ``generate:`` section."""

    prompts_dir: str = "../shared/data/eval_prompts"  # relative to the working directory
    sets: list[str] = field(default_factory=lambda: list(PROMPT_SETS))
    limit: int | None = 4  # prompts per set, the first ones in the file; None = all
    max_new_tokens: int = 64
    batch_size: int = 8
    baseline: str = BASELINE_SFT  # baseline_sft | base | a model directory
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"generate.limit must be >= 1 or null, got {self.limit}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("generate.max_new_tokens and generate.batch_size must be >= 1")
        if not isinstance(self.baseline, str) or not self.baseline:
            raise ConfigError(f"generate.baseline must be {BASELINE_SFT}, {BASE} or a model directory, "
                              f"got {self.baseline!r}")


@dataclass(frozen=True)
class Inputs:
    sft_model: Path
    baseline_model: Path


@dataclass(frozen=True)
class Outputs:
    answers: Path
    alpaca_eval_dir: Path
    metrics: Path


def baseline_model(choice: str, dataset: str | None, student_model: str | Path) -> Path:
    """The model directory of ``generate.baseline``: ``baseline_sft`` (``models/K/baseline-sft``),
    ``base`` (``student_model``) or ``choice`` itself, a directory.

    Raises:
        UserError: ``baseline_sft`` without a dataset name.
    """
    if choice == BASELINE_SFT:
        if not dataset:
            raise UserError(f"generate.baseline={BASELINE_SFT} needs --dataset (or give a model directory)")
        return Path(BASELINE_PATHS["output"].format(dataset=dataset))
    return Path(student_model) if choice == BASE else Path(choice)


def generator_names(dataset: str, baseline_model: Path, baseline: str = BASELINE_SFT) -> dict[str, str]:
    """The ``generator`` of each role in the AlpacaEval files: ``<dataset>-student-sft``, and
    ``<dataset>-baseline-sft`` for the baseline arm, else the baseline directory's name."""
    name = f"{dataset}-baseline-sft" if baseline == BASELINE_SFT else Path(baseline_model).name
    return {"sft": f"{dataset}-student-sft", "baseline": name}


def run(cfg: Config, template: str, inputs: Inputs, outputs: Outputs, dataset: str = "student") -> dict[str, Any]:
    """Generate both models' answers; write the answers, the AlpacaEval files and the metrics.

    Args:
        template: the student prompt template (``templates.TEMPLATES``), normally ``finetune.template``.
        dataset: names the SFT model in the AlpacaEval ``generator`` field.
    Returns:
        The metrics written.
    Raises:
        UserError: an unknown set, a missing prompt file or model directory, a bad device.
        ValueError: an unknown template.
    """
    start = time.monotonic()
    sets = [cfg.sets] if isinstance(cfg.sets, str) else list(cfg.sets)
    prompts, rejects = load_prompts(cfg.prompts_dir, sets, cfg.limit)
    for r in rejects:
        log.warning("%s line %d rejected: %s", r["set"], r["line"], r["reason"])
    device = resolve_device(cfg.device)
    names = generator_names(dataset, inputs.baseline_model, cfg.baseline)
    rows: list[dict[str, Any]] = []
    by_role: dict[str, list[dict[str, Any]]] = {}
    from transformers import AutoTokenizer

    for role, model in zip(ROLES, (inputs.sft_model, inputs.baseline_model), strict=True):
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


def finetune_template(params: dict[str, Any]) -> str:
    """``finetune.template`` from params (its default when unset): the one source of the prompt format."""
    return load_config(FinetuneConfig, params, "finetune").template


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("generate", __doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="recycled-SFT (default models/K/student-sft)")
    parser.add_argument("--template", default=None, help="prompt template (default finetune.template from params)")
    parser.add_argument("--output", type=Path, default=None, help="answers (default data/K/answers.jsonl)")
    parser.add_argument("--alpaca-eval-dir", type=Path, default=None, help="default data/K/alpaca_eval")
    parser.add_argument("--metrics", type=Path, default=None, help="default metrics/K/generate.json")
    args, (cfg, student), params = parse_stage_args(
        parser, [Section(Config, "generate"), Section(StudentConfig, "student")], argv
    )
    paths = resolve_paths(parser, args, {
        "model_dir": FINETUNE_PATHS["output"],
        "output": "data/{dataset}/answers.jsonl",
        "alpaca_eval_dir": "data/{dataset}/alpaca_eval",
        "metrics": "metrics/{dataset}/generate.json",
    })
    template = args.template or finetune_template(params)
    inputs = Inputs(sft_model=paths["model_dir"], baseline_model=baseline_model(cfg.baseline, args.dataset,
                                                                                 student.model))
    outputs = Outputs(answers=paths["output"], alpaca_eval_dir=paths["alpaca_eval_dir"], metrics=paths["metrics"])
    run(cfg, template, inputs, outputs, dataset=args.dataset or "student")
    return 0
