"""Stage ``score``: the student's IFD and r-IFD of every variant of every sample.

Pipeline mode (``reflection-tuning score --dataset K``) reads ``data/K/{original,
instruction,response,both}.jsonl`` and writes ``data/K/scores.jsonl`` (one row per
(id, variant)), ``metrics/K/score.json`` and the plot data ``metrics/K/score_{ifd,hist,
reflected}.csv`` (:mod:`reflection_tuning.score.summary`).
Each of these paths has its option (``--original``, ``--output`` for the scores, ``--plot``, …).
Plain mode (``reflection-tuning score --input rows.jsonl --output scored.jsonl``) scores
plain ``{instruction, input, output}`` rows and writes them back with the score fields,
and their metrics beside them (``scored.metrics.json``, or ``--metrics``).

The template: ``score.template``, or when it is null the training template
(``finetune.template``, given on the command line as ``--train-template`` by dvc.yaml; the
papers' Vicuna when absent), so scoring and training use one prompt unless a user sets
them apart on purpose. The reference scores in Vicuna with ``max_length`` 2048
(Reflection_Tuning ``selection_code/data_analysis.py``), our defaults too.

Inputs (``score.input_mode``): with ``merge`` (default) every variant is scored in the no-input
shape, its input folded into the instruction by ``rows.merge_input``, the rule fetch uses
for ``datasets.K.input: merge``. A reflected instruction has no input, so IFD(instruction)
and IFD(original), which v2 compares, come from prompts of the same shape; on rows that
fetch already merged this changes nothing. ``keep`` scores a row with an input in the
with-input template, as the reference scorer does on a file with an ``input`` field; then
IFD(instruction) > IFD(original) compares two template shapes for those rows.

``score.proxy_model`` (null = the student) may name a smaller proxy scorer, as Superfiltering
does with GPT-2 (arXiv 2402.00530); give it its own ``template`` (``bare`` is
Superfiltering's). ``score.embed: true`` also stores one embedding per scored row in
``data/K/embeddings.npz`` (:mod:`reflection_tuning.score.embed`), for ``select.diversity``;
with ``false`` the file holds no rows.

IFD and r-IFD are independent (``ifd_status``, ``rifd_status``): a failed r-IFD (e.g. a
reverse prompt that fills ``max_length``) leaves the IFD, and the reverse.

Per row the four terms of ``templates.scoring_pairs`` are scored, a truncated conditional
term capping its "alone" term (:mod:`reflection_tuning.score.pairs`, which also holds plain
mode's scoring of a rows file).

Under ``torchrun --nproc_per_node N`` (or ``accelerate launch``) each rank scores its share
of the batches and rank 0 writes the same outputs as one process
(:mod:`reflection_tuning.score.shard`). With ``cache_dir`` set, pair scores are appended
there as they are computed, and a killed run resumes (:mod:`reflection_tuning.score.resume`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reflection_tuning import status as st
from reflection_tuning.infra.command import Call, Flag, PathSpec, Section, Stage
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.io import read_index, write_jsonl, write_metrics
from reflection_tuning.rows import INPUT_MODES, VARIANTS, is_usable
from reflection_tuning.score.pairs import score_file, score_rows, scorer_metrics
from reflection_tuning.score.shard import Shard, shard_from_env, start, stop
from reflection_tuning.score.summary import score_metrics, write_plots
from reflection_tuning.student import StudentConfig
from reflection_tuning.templates import DEFAULT_TEMPLATE, TEMPLATES, scoring_pairs

log = logging.getLogger(__name__)

Template = Literal[TEMPLATES]  # templates.TEMPLATES
InputMode = Literal[INPUT_MODES]  # rows.INPUT_MODES: merge | keep


@dataclass(frozen=True)
class Config:
    """The ``score:`` section. ``template``: None = the training template; ``input_mode``: merge | keep;
    ``max_length``, ``batch_tokens``: tokens; ``device``: auto | cpu | cuda[:N];
    ``cache_dir``: the resume cache of pair scores (None: no cache); ``proxy_model``: the scoring model,
    None = the student (named apart from ``student.model``, whose option is ``--model``);
    ``embed``: store mean-pooled last hidden states beside the scores."""

    proxy_model: str | None
    template: Template | None
    input_mode: InputMode
    max_length: int
    batch_tokens: int
    device: str
    cache_dir: str | None
    embed: bool

    def __post_init__(self) -> None:
        if self.max_length < 2 or self.batch_tokens < 1:
            raise ConfigError("score: max_length must be >= 2 and batch_tokens >= 1")


def template_of(cfg: Config, train_template: str | None = None) -> str:
    """The scoring template: ``cfg.template``, else the training template, else :data:`DEFAULT_TEMPLATE`.

    Raises:
        ConfigError: the training template is not a known template.
    """
    template = cfg.template or train_template or DEFAULT_TEMPLATE
    if template not in TEMPLATES:
        raise ConfigError(f"score: the training template {template!r} is not one of {TEMPLATES}")
    return template


def write_embeddings(cfg: Config, entries: list[dict[str, Any]], scorer: Any, template: str, path: Path) -> None:
    """Embed every usable (id, variant) as the scorer reads its ``a_given_q`` text (none unless ``cfg.embed``)."""
    from reflection_tuning.score.embed import embed_texts, save_embeddings

    usable = [e for e in entries if is_usable(e["_row"])] if cfg.embed else []
    texts = []
    for e in usable:
        r = e["_row"]
        pair = scoring_pairs(template, r["instruction"], r.get("input") or "", r["output"], scorer.tokenizer,
                             cfg.input_mode)["a_given_q"]
        texts.append(pair.prefix + pair.target)
    vectors = embed_texts(scorer.model, scorer.tokenizer, texts, cfg.max_length) if texts else None
    save_embeddings(path, [(e["id"], e["variant"]) for e in usable], vectors)


def _load_scorer(cfg: Config, student: StudentConfig, shard: Shard) -> Any:
    from reflection_tuning.score.resume import PairCache, model_fingerprint
    from reflection_tuning.score.scorer import HFScorer
    from reflection_tuning.student import resolve_device

    device = resolve_device(cfg.device)
    if shard.distributed and device == "cuda":
        device = f"cuda:{shard.local_rank}"  # one GPU per rank
    model = cfg.proxy_model or student.model
    scorer = HFScorer.from_pretrained(model, device, max_length=cfg.max_length,
                                      batch_tokens=cfg.batch_tokens, shard=shard)
    if cfg.cache_dir:
        fingerprint = model_fingerprint(model, scorer.precision)
        scorer.cache = PairCache(cfg.cache_dir, fingerprint, writer=f"rank{shard.rank}")
    return scorer


def _close(scorer: Any) -> None:
    if getattr(scorer, "cache", None) is not None:
        scorer.cache.close()


def gather_variants(inputs: Inputs) -> list[dict[str, Any]]:
    """One row per (original id, variant); a variant missing for an id is a ``None`` placeholder row.

    Raises:
        ValueError: an id repeats within a file.
    """
    out = []
    by_variant = {v: read_index(getattr(inputs, v)) for v in VARIANTS}
    ids = list(by_variant["original"])
    for v in VARIANTS[1:]:
        extra = set(by_variant[v]) - set(ids)
        if extra:
            log.warning("%s: %d ids not in the original rows are ignored", v, len(extra))
    for i in ids:
        for v in VARIANTS:
            row = by_variant[v].get(i)
            out.append({"id": i, "variant": v, "_row": row})
    return out


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs, scorer: Any = None,
        shard: Shard = Shard(), train_template: str | None = None) -> dict:
    """Score all four variants of every original row; write scores, metrics and plot data.

    ``scorer`` defaults to the student model loaded per ``cfg``. ``train_template`` is
    ``finetune.template``, the scoring template when ``cfg.template`` is None. In a
    data-parallel job every rank calls this; only rank 0 writes. Returns the metrics (on
    every rank).
    """
    start_time = time.monotonic()
    entries = gather_variants(inputs)
    scorer = scorer or _load_scorer(cfg, student, shard)
    fields = score_rows([e["_row"] or {"status": st.MISSING} for e in entries], scorer,
                        template_of(cfg, train_template), cfg.input_mode)
    rows = [{"id": e["id"], "variant": e["variant"], **f} for e, f in zip(entries, fields)]
    metrics = {**score_metrics(rows, VARIANTS), **scorer_metrics(scorer, shard), "ranks": shard.world}
    _close(scorer)
    if shard.is_main and outputs.embeddings is not None:
        write_embeddings(cfg, entries, scorer, template_of(cfg, train_template), outputs.embeddings)
    metrics["seconds"] = time.monotonic() - start_time
    if shard.is_main:
        write_jsonl(outputs.scores, rows, sort_by=("id", "variant"))
        write_plots(outputs.plot, outputs.hist, outputs.reflected, rows, VARIANTS)
        write_metrics(outputs.metrics, metrics)
        log.info("scored %d rows (%d ok) in %.1fs", len(rows), sum(r["status"] == st.OK for r in rows),
                 metrics["seconds"])
    return metrics


def run_plain(cfg: Config, student: StudentConfig, input: Path, output: Path, metrics: Path | None = None,
              scorer: Any = None, shard: Shard = Shard(), train_template: str | None = None) -> dict:
    """Plain mode: score plain ``{instruction, input, output}`` rows; write them back, in order, with
    the score fields (:func:`reflection_tuning.score.pairs.score_file`). Returns the metrics.
    """
    start_time = time.monotonic()
    scorer = scorer or _load_scorer(cfg, student, shard)
    try:
        return score_file(input, output, metrics, scorer, template_of(cfg, train_template), cfg.input_mode, shard,
                          start_time)
    finally:
        _close(scorer)


def _pipeline(path: str) -> PathSpec:
    """A pipeline-mode path: None in plain mode (``--input``/``--output`` without ``--dataset``)."""
    return PathSpec(path, optional=True)


def invoke(call: Call) -> None:
    """Plain mode with ``--input`` (and ``--output``), else pipeline mode; on this rank of a
    data-parallel job (``RANK`` / ``WORLD_SIZE`` from torchrun or accelerate launch)."""
    args, (cfg, student) = call.args, call.configs
    if args.input and not args.output:
        call.error("plain mode needs both --input and --output")
    inputs, outputs = Inputs(**call.inputs), Outputs(**call.outputs)
    missing = [f"--{STAGE.flag(n).replace('_', '-')}" for n, p in {**call.inputs, **call.outputs}.items() if p is None]
    if not args.input and missing:
        call.error(f"give --dataset K (pipeline mode), or --input and --output (plain mode); missing: "
                   f"{', '.join(missing)}")
    shard = shard_from_env(os.environ)
    start(shard)  # a rank that fails exits with an error, and the launcher stops the others
    if args.input:
        run_plain(cfg, student, args.input, outputs.scores, outputs.metrics, shard=shard,
                  train_template=args.train_template)
    else:
        run(cfg, student, inputs, outputs, shard=shard, train_template=args.train_template)
    stop(shard)


STAGE = Stage(
    "score", __doc__,
    sections=(Section(Config, "score"), Section(StudentConfig, "student")),
    inputs={v: _pipeline(f"data/{{dataset}}/{v}.jsonl") for v in VARIANTS},
    # plain mode: --output is the scored rows, --metrics (beside it unless given) their metrics
    outputs={"scores": PathSpec("data/{dataset}/scores.jsonl", flag="output", optional=True),
             "metrics": _pipeline("metrics/{dataset}/score.json"),
             "plot": _pipeline("metrics/{dataset}/score_ifd.csv"),
             "hist": _pipeline("metrics/{dataset}/score_hist.csv"),
             "reflected": _pipeline("metrics/{dataset}/score_reflected.csv"),
             "embeddings": _pipeline("data/{dataset}/embeddings.npz")},
    flags=(Flag("--input", type=Path, default=None, reads=True, help="plain mode: rows to score (with --output)"),
           Flag("--train-template", default=None, help=f"finetune.template: the scoring template when "
                                                       f"score.template is null (absent: {DEFAULT_TEMPLATE})")),
    invoke=invoke,
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
