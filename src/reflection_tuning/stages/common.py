"""The one entry point of every stage: a declaration of its params sections and paths.

A stage module declares itself once, as a :class:`Stage`: the params sections it reads,
and its input and output paths as templates (``data/{dataset}/selected.jsonl``). From that
declaration come the command's options and help, the resolution of every path, and the
check of ``dvc.yaml`` (``tests/unit/stages/test_dvc_yaml.py``). Its ``main`` is then a
few lines: ``call = STAGE.parse(argv)``, then ``run(...)`` with ``call.configs``,
``call.inputs`` and ``call.outputs``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflection_tuning.config import Section, parse
from reflection_tuning.errors import UserError
from reflection_tuning.logs import setup_logging


@dataclass(frozen=True)
class PathSpec:
    """One path of a stage: its template (``{dataset}`` = ``--dataset``) and its option.

    ``flag``: the option without ``--`` and with ``_`` for ``-`` (default: the field name).
    ``optional``: without ``--dataset`` and without its option, the path is ``None``.
    ``must_exist``: an input that resolved to a path must exist (:meth:`Stage.parse`); ``False``
    for one the stage reads only when it is there.
    """

    template: str
    flag: str | None = None
    optional: bool = False
    must_exist: bool = True


def _spec(value: str | PathSpec) -> PathSpec:
    return value if isinstance(value, PathSpec) else PathSpec(value)


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


def summary(doc: str | None) -> str | None:
    """The first paragraph of a module docstring, for ``--help`` (``None`` without one)."""
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(first.replace("``", "`").split()) or None


@dataclass(frozen=True)
class Call:
    """One parsed invocation: the options, one config per section, the resolved paths, the params,
    and per section the keys the options set."""

    args: argparse.Namespace
    configs: tuple[Any, ...]
    inputs: dict[str, Path | None]
    outputs: dict[str, Path | None]
    params: dict[str, Any]
    overrides: tuple[dict[str, Any], ...] = ()

    @property
    def dataset(self) -> str | None:
        return self.args.dataset


@dataclass(frozen=True)
class Stage:
    """A stage's declaration: ``reflection-tuning <name>``, its sections, its paths.

    ``inputs`` and ``outputs`` map a field of the stage's ``Inputs``/``Outputs`` to its
    path template (a string, or a :class:`PathSpec` for another option name). ``dataset``:
    the stage runs once per dataset (``foreach`` in ``dvc.yaml``) and has ``--dataset``.
    """

    name: str
    doc: str | None
    sections: tuple[Section, ...]
    inputs: Mapping[str, str | PathSpec] = field(default_factory=dict)
    outputs: Mapping[str, str | PathSpec] = field(default_factory=dict)
    dataset: bool = True

    def paths(self) -> dict[str, PathSpec]:
        """Every path by field name, inputs first."""
        return {k: _spec(v) for k, v in {**self.inputs, **self.outputs}.items()}

    def io(self, module: str) -> tuple[type, type]:
        """The stage's ``Inputs`` and ``Outputs``: frozen dataclasses with one ``Path`` field per
        declared path, in declaration order (``Path | None``, default ``None``, for an optional
        one), so the names of a stage's paths are written once, in its declaration.

        ``module``: the stage module's ``__name__`` (the classes' ``__module__``).
        """
        return self._paths_class("Inputs", self.inputs, module), self._paths_class("Outputs", self.outputs, module)

    def _paths_class(self, name: str, paths: Mapping[str, str | PathSpec], module: str) -> type:
        specs = {k: _spec(v) for k, v in paths.items()}
        fields: list[Any] = [(k, Path) for k, spec in specs.items() if not spec.optional]
        fields += [(k, Path | None, field(default=None)) for k, spec in specs.items() if spec.optional]
        verb = "reads" if name == "Inputs" else "writes"
        cls = dataclasses.make_dataclass(name, fields, frozen=True)
        cls.__module__, cls.__qualname__ = module, name
        cls.__doc__ = f"The paths ``{self.name}`` {verb}: " + ", ".join(
            f"``{k}`` ({spec.template})" for k, spec in specs.items()) + "."
        return cls

    def flag(self, name: str) -> str:
        return self.paths()[name].flag or name

    def parser(self) -> argparse.ArgumentParser:
        """The command's parser: ``--params``, ``--dataset``, ``--log-level``, one option per path."""
        parser = argparse.ArgumentParser(prog=f"reflection-tuning {self.name}", description=summary(self.doc))
        parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                            help="params file (default params.yaml; without it, give every key as an option)")
        parser.add_argument("--dataset", default=None,
                            help="dataset name under 'datasets:' in params" if self.dataset
                            else "accepted as by every stage, and ignored by this command")
        parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING … (DEBUG: tracebacks too)")
        group = parser.add_argument_group("paths (default: the template, {dataset} = --dataset)")
        for name, spec in self.paths().items():
            flag = spec.flag or name
            group.add_argument("--" + flag.replace("_", "-"), dest=flag, type=Path, default=None,
                               help=f"{name} (default {spec.template})")
        return parser

    def parse(self, argv: list[str] | None, parser: argparse.ArgumentParser | None = None) -> Call:
        """Parse ``argv``, set up logging, load every section, resolve every path, check the inputs.

        ``parser``: :meth:`parser` with the stage's own extra options, if it has any.

        Raises:
            SystemExit: bad arguments, or a path or section needs ``--dataset`` and none was given.
            ConfigError: the params file is missing and the options do not give every key,
                or a section does not match its dataclass.
            UserError: a declared input that resolved to a path does not exist (``PathSpec.must_exist``).
        """
        parser = parser or self.parser()
        parsed = parse(parser, self.sections, argv, on_args=self._on_args)
        paths = self._resolve(parser, parsed.args)
        # One check for every stage, so ``run`` reads its inputs without checking them again.
        missing = [f"{paths[k]} (--{self.flag(k).replace('_', '-')})" for k in self.inputs
                   if paths[k] is not None and _spec(self.inputs[k]).must_exist and not paths[k].exists()]
        if missing:
            raise UserError(f"{self.name}: missing input {', '.join(missing)}; run the stages before it "
                            "first (dvc repro), or give the path")
        return Call(parsed.args, parsed.configs, {k: paths[k] for k in self.inputs},
                    {k: paths[k] for k in self.outputs}, parsed.params, parsed.overrides)

    def _on_args(self, args: argparse.Namespace) -> None:
        if not self.dataset:
            args.dataset = None
        setup_logging(args.log_level)

    def _resolve(self, parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Path | None]:
        """Each path from its option, else beside the output given (sidecars), else its template.

        A sidecar (``SIDECARS``: rejects, metrics, plots) with no option of its own goes beside
        the output the user gave (``beside``), so a run outside a dataset writes nothing into
        ``data/`` or ``metrics/``; otherwise a missing path is its template filled with ``--dataset``.
        """
        specs = self.paths()
        anchor = next((Path(getattr(args, self.flag(n))) for n in sorted(self.outputs, key=self._anchor_rank)
                       if self._anchor_rank(n) < 2 and getattr(args, self.flag(n)) is not None), None)
        out: dict[str, Path | None] = {}
        for name, spec in specs.items():
            flag = spec.flag or name
            value = getattr(args, flag)
            if value is None and anchor is not None and flag in SIDECARS and name in self.outputs:
                value = beside(anchor, flag, spec.template)
            if value is None and args.dataset:
                value = spec.template.format(dataset=args.dataset)
            if value is None and "{dataset}" not in spec.template:
                value = spec.template
            if value is None and not spec.optional:
                parser.error(f"--{flag.replace('_', '-')} is required without --dataset")
            out[name] = Path(value) if value is not None else None
        return out

    def _anchor_rank(self, name: str) -> int:
        """0 for ``--output``, 1 for another ``--output-*``, 2 for the rest (never an anchor)."""
        flag = self.flag(name)
        return 0 if flag == "output" else 1 if flag.startswith("output_") else 2

