"""The dataset card of ``data/K/export/README.md``: Hub metadata (YAML) and how the data was made.

The YAML front matter is a :class:`huggingface_hub.DatasetCardData` (license, language,
size category, source, and ``configs`` naming the parquet files); the body is the Jinja2
template ``cards/dataset.md.j2``, rendered by :meth:`huggingface_hub.DatasetCard.from_template`.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from reflection_tuning.rows import VARIANTS

TEMPLATE = Path(__file__).parent / "cards" / "dataset.md.j2"
MEASURES = {"ifd": "IFD", "rifd": "r-IFD"}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    return next((name for limit, name in _SIZES if n < limit), "1M<n<10M")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def distributions(variants: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """n, mean, 10th / 50th / 90th percentile of IFD and r-IFD per variant (rows with a score).

    Rows without a number (failed, unscored) are left out, not counted as 0.
    """
    out = []
    for v in VARIANTS:
        for key, name in MEASURES.items():
            xs = sorted(float(r[key]) for r in variants
                        if r["variant"] == v and isinstance(r.get(key), (int, float)))
            if not xs:
                out.append({"variant": v, "measure": name, "n": 0, "mean": "–", "p10": "–", "median": "–", "p90": "–"})
                continue
            deciles = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
            out.append({"variant": v, "measure": name, "n": len(xs), "mean": _fmt(statistics.fmean(xs)),
                        "p10": _fmt(deciles[0]), "median": _fmt(statistics.median(xs)), "p90": _fmt(deciles[8])})
    return out


def card_data(cfg: Any, prov: Any, n_selected: int, files: Mapping[str, str | None]) -> DatasetCardData:
    """The card's YAML metadata; ``configs`` map each parquet file to a ``train`` split."""
    configs = [{"config_name": "default", "default": True,
                "data_files": [{"split": "train", "path": files["selected"]}]}]
    if files.get("all_variants"):
        configs.append({"config_name": "all_variants",
                        "data_files": [{"split": "train", "path": files["all_variants"]}]})
    return DatasetCardData(
        license=cfg.license or "other", language=["en"],
        pretty_name=cfg.pretty_name or f"{prov.dataset} (reflection-tuning)",
        size_categories=[size_category(n_selected)], source_datasets=[prov.source],
        task_categories=["text-generation"],
        tags=["reflection-tuning", "selective-reflection-tuning", "ifd", "synthetic"], configs=configs,
    )


def card_text(cfg: Any, prov: Any, selected: Sequence[Mapping[str, Any]], variants: Sequence[Mapping[str, Any]],
              select_metrics: Mapping[str, Any], files: Mapping[str, str | None]) -> str:
    """The full README.md: front matter and body.

    Args:
        cfg: the ``export:`` config (``license``, ``pretty_name``).
        prov: the run's :class:`reflection_tuning.export.Provenance`.
        select_metrics: ``metrics/K/select.json`` (its ``branch_*`` counts), or empty.
    """
    data = card_data(cfg, prov, len(selected), files)
    teachers = sorted({r["teacher_model"] for r in variants if r.get("teacher_model")})
    hashes = sorted({f"{r['variant']}: {r['template_hash']}" for r in variants if r.get("template_hash")})
    select_params = {k: v for k, v in dataclasses.asdict(prov.select).items() if k != "method"}
    card = DatasetCard.from_template(
        data, template_path=str(TEMPLATE),
        source=prov.source, license=data.license, license_known=cfg.license is not None,
        files=files, n_selected=len(selected), n_variants=len(variants),
        teachers=", ".join(f"`{t}`" for t in teachers) or "none (no reflection rows)",
        hashes=", ".join(f"`{h}`" for h in hashes) or "none", student=prov.student, select=prov.select,
        select_params=", ".join(f"`{k}={v}`" for k, v in select_params.items()),
        commit=prov.commit, params_hash=prov.params_hash,
        branches=[(k.removeprefix("branch_"), v) for k, v in sorted(select_metrics.items()) if k.startswith("branch_")],
        distributions=distributions(variants),
    )
    return str(card)
