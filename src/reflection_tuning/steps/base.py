"""What every LLM step shares (in the manner of distilabel's tasks): its name, its prompt files
beside its module (``<name>.j2`` and ``<name>.system.txt``: the one place their location is
written), the row columns the prompt reads, and the request it sends for a row.

A subclass adds what its reply holds (:attr:`schema`, :meth:`parse` for free text,
:meth:`parse_json` for a structured reply) and the row it writes: :class:`~.rewrite.RewriteStep`
(the two reflections, ``compress``) and :class:`~.judge.JudgeStep`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from reflection_tuning.llm.cache import Messages
from reflection_tuning.steps.prompt import HERE, Prompt, load_prompt


class PromptStep:
    """A step whose request is its Jinja2 template filled from the row's :attr:`input_columns`.

    Args:
        prompt: the template and system prompt (:meth:`load` reads the shipped ones, or a user's).
    """

    name: ClassVar[str] = ""
    input_columns: ClassVar[tuple[str, ...]] = ()
    reads_truncated: ClassVar[bool] = False

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt

    @classmethod
    def template_files(cls) -> tuple[Path, Path]:
        """The shipped (template, system prompt) of this step, beside its module."""
        return HERE / f"{cls.name}.j2", HERE / f"{cls.name}.system.txt"

    @classmethod
    def load(cls, template: str | Path | None = None, system: str | Path | None = None, *args: Any, **kwargs: Any):
        """The step with the prompt files given (default: the shipped ones); ``args`` and ``kwargs``
        go to the constructor.

        Raises:
            FileNotFoundError: a file is missing.
            ValueError: the template is not valid Jinja2, or does not read exactly :attr:`input_columns`.
        """
        shipped_template, shipped_system = cls.template_files()
        prompt = load_prompt(template or shipped_template, system or shipped_system, cls.input_columns)
        return cls(prompt, *args, **kwargs)

    @classmethod
    def shipped(cls, *args: Any, **kwargs: Any):
        """The step with its shipped prompt files (``args``, ``kwargs``: the constructor's)."""
        return cls.load(None, None, *args, **kwargs)

    @property
    def template_hash(self) -> str:
        return self.prompt.hash

    def format_input(self, row: Mapping[str, Any]) -> Messages:
        """The chat messages of the request for ``row`` (a missing or ``None`` column reads "")."""
        return self.prompt.messages(**{k: row.get(k) for k in self.input_columns})
