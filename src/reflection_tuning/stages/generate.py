"""Stage ``generate@<dataset>``: the fine-tuned student and the baseline answer the evaluation prompts.

Both models answer the first ``limit`` prompts of each test set (Vicuna, Koala, WizardLM,
LIMA, Self-Instruct: the papers' pairwise evaluation, see :mod:`reflection_tuning.generation`)
greedily, in the prompt template the student was fine-tuned with (``finetune.template``),
up to ``max_new_tokens`` new tokens. The baseline is the base student (``student.model``)
unless ``generate.baseline`` names another model directory.

Outputs: ``data/K/answers.jsonl`` (one row per prompt and role ``sft`` / ``baseline``:
``id``, ``set``, ``source_id``, ``instruction``, ``input``, ``prompt``, ``role``,
``generator``, ``answer``, ``finish`` (``stop`` | ``length``), ``new_tokens``), the AlpacaEval
inputs ``data/K/alpaca_eval/model_outputs.json`` (SFT) and ``reference_outputs.json``
(baseline), and ``metrics/K/generate.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflection_tuning import templates
from reflection_tuning.config import ConfigError, load_config
from reflection_tuning.generation import PROMPT_SETS, alpaca_eval_records, generate_answers, load_prompts
from reflection_tuning.io import write_json, write_jsonl, write_metrics
from reflection_tuning.stages.common import Section, parse_stage_args, resolve_paths, stage_parser
from reflection_tuning.student import StudentConfig, resolve_device

log = logging.getLogger(__name__)

ROLES = ("sft", "baseline")


@dataclass(frozen=True)
class Config:
    """The ``generate:`` section."""

    prompts_dir: str = "../shared/data/eval_prompts"  # relative to the working directory
    sets: list[str] = field(default_factory=lambda: list(PROMPT_SETS))
    limit: int | None = 4  # prompts per set, the first ones in the file; None = all
    max_new_tokens: int = 64
    batch_size: int = 8
    baseline: str | None = None  # model directory; None = student.model
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"generate.limit must be >= 1 or null, got {self.limit}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("generate.max_new_tokens and generate.batch_size must be >= 1")


@dataclass(frozen=True)
class Inputs:
    sft_model: Path
    baseline_model: Path


@dataclass(frozen=True)
class Outputs:
    answers: Path
    alpaca_eval_dir: Path
    metrics: Path


def generator_names(dataset: str, baseline_model: Path) -> dict[str, str]:
    """The ``generator`` of each role in the AlpacaEval files: ``<dataset>-student-sft``, and the
    baseline directory's name."""
    return {"sft": f"{dataset}-student-sft", "baseline": Path(baseline_model).name}


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
    names = generator_names(dataset, inputs.baseline_model)
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
    metrics: dict[str, Any] = {"prompts": len(prompts), "rejected": len(rejects)}
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
    from reflection_tuning.stages.finetune import Config as FinetuneConfig

    return load_config(FinetuneConfig, params, "finetune").template


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("generate", __doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="fine-tuned model (default models/K/student-sft)")
    parser.add_argument("--template", default=None, help="prompt template (default finetune.template from params)")
    parser.add_argument("--output", type=Path, default=None, help="answers (default data/K/answers.jsonl)")
    parser.add_argument("--alpaca-eval-dir", type=Path, default=None, help="default data/K/alpaca_eval")
    parser.add_argument("--metrics", type=Path, default=None, help="default metrics/K/generate.json")
    args, (cfg, student), params = parse_stage_args(
        parser, [Section(Config, "generate"), Section(StudentConfig, "student")], argv
    )
    paths = resolve_paths(parser, args, {
        "model_dir": "models/{dataset}/student-sft",
        "output": "data/{dataset}/answers.jsonl",
        "alpaca_eval_dir": "data/{dataset}/alpaca_eval",
        "metrics": "metrics/{dataset}/generate.json",
    })
    template = args.template or finetune_template(params)
    inputs = Inputs(sft_model=paths["model_dir"], baseline_model=Path(cfg.baseline or student.model))
    outputs = Outputs(answers=paths["output"], alpaca_eval_dir=paths["alpaca_eval_dir"], metrics=paths["metrics"])
    run(cfg, template, inputs, outputs, dataset=args.dataset or "student")
    return 0
