"""The ``select:`` section of ``params.yaml``: the selection's settings, checked when they load.

It lives with the rules, not in the stage, so that the stages and commands that read it
(``select``, ``report``'s data browser, ``export``'s card) import it downward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.select.budget import resolve_budget
from reflection_tuning.select.rules import BASELINES, METHODS

Method = Literal[METHODS]  # rules.METHODS: v2 | v1 | original | random | length
Diversity = Literal["facility_location"]


@dataclass(frozen=True)
class Config:
    """The ``select:`` section: ``method`` (v2 | v1 | original | random | length), then ``top_k`` or
    ``ratio`` (or neither), then ``budget`` (rows; an int or ``{match: v2}``) with ``seed`` and ``diversity``.

    Raises:
        ConfigError: both ``top_k`` and ``ratio``, a limit out of range, a bad budget,
            ``decontaminate`` without ``eval_prompts_dir``, a baseline without a budget, or
            ``diversity`` without a budget or with a baseline.
    """

    method: Method
    top_k: int | None
    ratio: float | None
    eval_prompts_dir: str | None  # the directory of evaluation prompt sets to check (None: no check)
    decontaminate_ngram: int  # words per n-gram (13: GPT-3, lm-eval)
    decontaminate: bool  # drop the rows that overlap an evaluation prompt
    budget: int | dict | None  # rows kept: an int, or {match: v2}
    seed: int  # the random baseline's and the budget cut's sample
    diversity: Diversity | None  # facility_location: cut to the budget by diversity

    def __post_init__(self) -> None:
        if self.top_k is not None and self.ratio is not None:
            raise ConfigError("select: give top_k or ratio, not both")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError(f"select.top_k must be >= 0, got {self.top_k}")
        if self.ratio is not None and not 0 <= self.ratio <= 1:
            raise ConfigError(f"select.ratio must be in [0, 1], got {self.ratio}")
        if self.decontaminate_ngram < 1:
            raise ConfigError(f"select.decontaminate_ngram must be >= 1, got {self.decontaminate_ngram}")
        if self.decontaminate and self.eval_prompts_dir is None:
            raise ConfigError("select.decontaminate needs select.eval_prompts_dir")
        try:
            resolve_budget(self.budget, lambda method: 0)
        except ValueError as e:
            raise ConfigError(f"select.budget: {e}") from None
        if self.method in BASELINES and self.budget is None:
            raise ConfigError(f"select.method {self.method} needs select.budget (an int or {{match: v2}})")
        if self.diversity and (self.budget is None or self.method in BASELINES):
            raise ConfigError("select.diversity needs select.budget and a method among v2, v1, original")
