"""The one entry point of every command: a declaration of its params sections, paths and options.

A command's module declares it once, as a :class:`Stage`: the params sections it reads, its
input and output paths as templates (``data/{dataset}/selected.jsonl``), its other options
(:class:`Flag`) and how its ``run`` is called from the parsed command line (``invoke``).
From that declaration come the command's options and help, the resolution of every path,
the one check of its inputs, and the check of ``dvc.yaml`` (``tests/unit/stages/test_dvc_yaml.py``).
Its ``main`` is one line: ``return STAGE.main(argv)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflection_tuning.infra.config import Section, parse
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.logs import setup_logging

# The one list of the commands of ``reflection-tuning``: each name with the module that declares
# it (its ``STAGE``) and runs it (its ``main``), by name, so that loading this module imports no
# command (:func:`declaration` imports one by name when asked).
# The stages of ``dvc.yaml`` come first, in pipeline order, and are ``STAGES``: the CLI, the
# report and the ``dvc.yaml`` check (``tests/unit/stages/test_dvc_yaml.py``) read them.
STAGES = ("models", "fetch", "reflect_instruction", "reflect_response", "score", "select", "finetune",
          "finetune_baseline", "evaluate", "generate", "judge", "report")
COMMANDS = {
    **{name: f"reflection_tuning.stages.{name}" for name in STAGES},
    # the commands outside dvc.yaml: they write no DVC outs of the pipeline
    "export": "reflection_tuning.stages.export",
    "compress": "reflection_tuning.stages.compress",
    "estimate": "reflection_tuning.estimate",
    "compare": "reflection_tuning.compare",
    "push": "reflection_tuning.hub",
}


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


@dataclass(frozen=True, init=False)
class Flag:
    """An option of a command beyond its paths and params keys: ``Flag("--repo", required=True,
    help=…)`` adds ``parser.add_argument("--repo", required=True, help=…)``.

    ``reads``: the option names a file the command reads, checked with its declared inputs.
    """

    names: tuple[str, ...]
    options: Mapping[str, Any]
    reads: bool

    def __init__(self, *names: str, reads: bool = False, **options: Any):
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "reads", reads)

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.names[0].lstrip("-").replace("-", "_")


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
    """One parsed invocation: the options, one config per section, the resolved paths and the params."""

    args: argparse.Namespace
    configs: tuple[Any, ...]
    inputs: dict[str, Path | None]
    outputs: dict[str, Path | None]
    params: dict[str, Any]
    stage: Stage | None = field(default=None, compare=False)
    parser: argparse.ArgumentParser | None = field(default=None, compare=False)

    @property
    def dataset(self) -> str | None:
        return self.args.dataset

    def error(self, message: str) -> None:
        """A usage error: the command's usage and ``message`` on stderr, exit status 2."""
        self.parser.error(message)


@dataclass(frozen=True)
class Stage:
    """A stage's declaration: ``reflection-tuning <name>``, its sections, its paths.

    ``inputs`` and ``outputs`` map a field of the stage's ``Inputs``/``Outputs`` to its
    path template (a string, or a :class:`PathSpec` for another option name). ``dataset``:
    the stage runs once per dataset (``foreach`` in ``dvc.yaml``) and has ``--dataset``.
    ``flags``: its other options. ``invoke``: how :meth:`main` calls its ``run``, given the
    parsed :class:`Call` (``lambda call: run(*call.configs, Inputs(**call.inputs), …)``).
    """

    name: str
    doc: str | None
    sections: tuple[Section, ...]
    inputs: Mapping[str, str | PathSpec] = field(default_factory=dict)
    outputs: Mapping[str, str | PathSpec] = field(default_factory=dict)
    dataset: bool = True
    flags: tuple[Flag, ...] = ()
    invoke: Callable[[Call], object] | None = None

    def main(self, argv: list[str] | None = None) -> int:
        """``reflection-tuning <name> …``: parse ``argv`` (:meth:`parse`), then ``invoke`` the stage's ``run``."""
        self.invoke(self.parse(argv))
        return 0

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
        """The command's parser: ``--params`` (for a command that reads params), ``--dataset``,
        ``--log-level``, one option per path, its flags."""
        parser = argparse.ArgumentParser(prog=f"reflection-tuning {self.name}", description=summary(self.doc))
        if self.sections:
            parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                                help="params file (default params.yaml; without it, give every key as an option)")
        parser.add_argument("--dataset", default=None,
                            help="dataset name under 'datasets:'" + (" in params" if self.sections else "")
                            if self.dataset
                            else "accepted as by every stage, and ignored by this command")
        parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING … (DEBUG: tracebacks too)")
        group = parser.add_argument_group("paths (default: the template, {dataset} = --dataset)")
        for name, spec in self.paths().items():
            flag = spec.flag or name
            group.add_argument("--" + flag.replace("_", "-"), dest=flag, type=Path, default=None,
                               help=f"{name} (default {spec.template})")
        for extra in self.flags:
            parser.add_argument(*extra.names, **extra.options)
        return parser

    def parse(self, argv: list[str] | None) -> Call:
        """Parse ``argv``, set up logging, load every section, resolve every path, check the inputs.

        Raises:
            SystemExit: bad arguments, or a path or section needs ``--dataset`` and none was given.
            ConfigError: the params file is missing and the options do not give every key,
                or a section does not match its dataclass.
            UserError: an input is missing (:meth:`missing`).
        """
        parser = self.parser()
        parsed = parse(parser, self.sections, argv, on_args=self._on_args)
        paths = self._resolve(parser, parsed.args)
        call = Call(parsed.args, parsed.configs, {k: paths[k] for k in self.inputs},
                    {k: paths[k] for k in self.outputs}, parsed.params, self, parser)
        missing = self.missing(call)
        if missing:
            writers = sorted({w for w in map(writer, missing.values()) if w}, key=list(COMMANDS).index)
            repro = " (dvc repro runs the stages before it)" if set(writers) <= set(STAGES) else ""
            todo = (f"run {' and '.join(writers)} first{repro}, or give the path" if writers
                    else "run the stages before it first (dvc repro), or give the path" if any(missing.values())
                    else "give the path of a file that exists")
            raise UserError(f"{self.name}: missing input {', '.join(missing)}; {todo}")
        return call

    def missing(self, call: Call) -> dict[str, str | None]:
        """The one check of a command's inputs, so that ``run`` reads them without checking them again:
        each missing one, as ``path (its option or key)``, with its template (``None`` but for a
        declared path). A command reads its declared inputs that resolved to a path (unless
        ``PathSpec.must_exist`` is false), the files its ``Flag(reads=True)`` options name, and
        the ``*_file`` keys of its sections that are set (a template, a system prompt).
        """
        found: dict[str, str | None] = {}
        for key, spec in ((k, _spec(v)) for k, v in self.inputs.items()):
            path = call.inputs[key]
            if path is not None and spec.must_exist and not path.exists():
                found[f"{path} (--{self.flag(key).replace('_', '-')})"] = spec.template
        for flag in (f for f in self.flags if f.reads):
            path = getattr(call.args, flag.dest)
            if path is not None and not Path(path).exists():
                found[f"{path} ({flag.names[0]})"] = None
        for section, cfg in zip(self.sections, call.configs):
            for f in dataclasses.fields(cfg):
                value = getattr(cfg, f.name)
                if f.name.endswith("_file") and value and not Path(value).is_file():
                    found[f"{value} ({section.name}.{f.name})"] = None
        return found

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


def declaration(command: str) -> Stage:
    """The ``STAGE`` of ``reflection-tuning <command>`` (:data:`COMMANDS`)."""
    return importlib.import_module(COMMANDS[command]).STAGE


def writer(template: str | None) -> str | None:
    """The command whose declared outputs include the path ``template``: the one to run before a
    command that reads it (``None`` for a path no command writes)."""
    return next((name for name in COMMANDS if template is not None
                 and any(_spec(v).template == template for v in declaration(name).outputs.values())), None)
