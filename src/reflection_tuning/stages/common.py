"""What every stage's ``main`` shares: the base argument parser and params loading."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from reflection_tuning.config import add_config_options, cli_overrides, load_config, read_params
from reflection_tuning.logs import setup_logging

T = TypeVar("T")


def stage_parser(command: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser with the options every stage has: ``--params``, ``--dataset``, ``--log-level``."""
    parser = argparse.ArgumentParser(
        prog=f"reflection-tuning {command}",
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (missing = defaults)")
    parser.add_argument("--dataset", default=None, help="dataset name under 'datasets:' in params")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING …")
    return parser


@dataclass(frozen=True)
class Section:
    """One params section a stage reads: its dataclass, its dotted name, and its CLI option prefix."""

    cls: type
    name: str
    prefix: str = ""


def parse_stage_args(
    parser: argparse.ArgumentParser, sections: list[Section], argv: list[str] | None
) -> tuple[argparse.Namespace, list[Any], dict[str, Any]]:
    """Parse ``argv``, set up logging, and load every section (params.yaml, then CLI options).

    ``{dataset}`` in a section name is replaced by ``--dataset``.

    Returns:
        (args, one config per section in order, the whole params dict).
    Raises:
        SystemExit: bad arguments (argparse), or a section needs ``--dataset`` and none was given.
    """
    for s in sections:
        add_config_options(parser, s.cls, s.prefix)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    params = read_params(args.params)
    configs = []
    for s in sections:
        name = s.name
        if "{dataset}" in name:
            if not args.dataset:
                parser.error("--dataset is required for this command")
            name = name.format(dataset=args.dataset)
        configs.append(load_config(s.cls, params, name, cli_overrides(args, s.cls, s.prefix)))
    return args, configs, params


# Outputs that accompany a stage's main output. Given ``--output X`` and not their own
# option, they are written beside X (``beside``), never into a default tree of the pipeline.
SIDECARS = ("rejects", "metrics", "plot", "loss_plot", "alpaca_eval_dir")


def beside(output: Path, name: str, default: str) -> Path:
    """The sidecar ``name`` of ``output``: ``out.jsonl`` -> ``out.rejects.jsonl``, ``out.metrics.json``.

    The extension is the default path's (``metrics/x/fetch.json`` -> ``.json``); the name
    drops a trailing ``_dir``. A directory output ``models/sft`` gets ``models/sft.metrics.json``.
    """
    stem = output.name[: -len(output.suffix)] if output.suffix and output.name != output.suffix else output.name
    return output.with_name(f"{stem}.{name.removesuffix('_dir')}{Path(default).suffix}")


def _anchor(args: argparse.Namespace, names: list[str]) -> Path | None:
    """The main output the user gave: ``--output``, else the first ``--output-*`` given."""
    for name in ["output"] + [n for n in names if n.startswith("output_")]:
        if name in names and getattr(args, name, None) is not None:
            return Path(getattr(args, name))
    return None


def resolve_paths(
    parser: argparse.ArgumentParser, args: argparse.Namespace, defaults: dict[str, str]
) -> dict[str, Path]:
    """Each path option from the command line, else a sidecar of the output, else its default.

    A sidecar (``SIDECARS``: rejects, metrics, plots) with no option of its own goes beside
    the output the user gave (``beside``), so a run outside a dataset writes nothing into
    ``data/`` or ``metrics/``; otherwise a missing path is its default filled with
    ``--dataset``.

    Raises:
        SystemExit: a path is missing and no ``--dataset`` was given (via ``parser.error``).
    """
    anchor = _anchor(args, list(defaults))
    out = {}
    for name, default in defaults.items():
        value = getattr(args, name)
        if value is None and anchor is not None and name in SIDECARS:
            value = beside(anchor, name, default)
        if value is None:
            if not args.dataset:
                parser.error(f"--{name.replace('_', '-')} is required without --dataset")
            value = Path(default.format(dataset=args.dataset))
        out[name] = Path(value)
    return out
