"""Pairwise LLM-judge: the judge prompt, the two scores it replies with, and the win/tie/lose rule.

The protocol is the one of Reflection-Tuning (arXiv 2310.11716, Sec. 4.2) and Selective
Reflection-Tuning (arXiv 2402.10110, Sec. 4.1), taken from the Vicuna / FastChat pairwise
review: the judge sees a question and two answers, rates each assistant from 1 to 10 and
writes the two scores alone on its first line. Every pair is judged twice, once in each
order (``sft_first``: the fine-tuned student is Assistant 1; ``baseline_first``: the
baseline is), and the two judgements are combined by :func:`combine` to cancel the
judge's position bias.

Template: ``judge.j2`` and ``judge.system.txt`` beside this module (:class:`~.base.PromptStep`;
``judge_step.prompt_file`` / ``system_file`` in params.yaml). A free-text reply has the two scores alone on its first
line (:func:`parse_scores`); a structured reply is :func:`reply_schema`. The ``judge`` stage writes
one :func:`pair_row` per prompt, holding one :func:`judgement` per order.

Nothing here does I/O or calls a model: the ``judge`` stage sends the messages built here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.llm import step
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.outcome import Outcome
from reflection_tuning.steps.base import PromptStep
from reflection_tuning.steps.prompt import Prompt

ORDERS = ("sft_first", "baseline_first")
ROLES = ("sft", "baseline")

# A judgement's status (:mod:`reflection_tuning.status`): ``ok`` or why it has no scores.
JUDGEMENT_STATUSES = (st.OK, st.PARSE_ERROR, st.TRUNCATED, st.REQUEST_ERROR, st.COST_CAP)

# A pair's outcome, from the fine-tuned student's side.
WIN, TIE, LOSE, FAILED = "win", "tie", "lose", "failed"
OUTCOMES = (WIN, TIE, LOSE, FAILED)

PLACEHOLDERS = ("question", "answer_1", "answer_2")
_NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
SCORE_MIN, SCORE_MAX = 0.0, 10.0


def order_answers(order: str, sft: str, baseline: str) -> tuple[str, str]:
    """(Assistant 1's answer, Assistant 2's answer) for ``order``.

    Raises:
        ValueError: an unknown order.
    """
    if order == "sft_first":
        return sft, baseline
    if order == "baseline_first":
        return baseline, sft
    raise ValueError(f"unknown order {order!r}; expected one of {ORDERS}")


@dataclass(frozen=True)
class Scores:
    """A judge reply read: ``status`` ok with ``scores`` (Assistant 1, Assistant 2), or why not."""

    status: str
    scores: tuple[float, float] | None = None
    reason: str | None = None


def parse_scores(reply: str, finish_reason: str | None = None) -> Scores:
    """The two scores on the first non-empty line of ``reply``, as the papers' review script reads them.

    The line must hold exactly two numbers separated by spaces and/or a comma (``8 7``,
    ``8, 7``, ``7.5 9``), each within [0, 10]. Nothing else is guessed: any other line is a
    ``parse_error`` with its reason, never a default score. A reply cut at ``max_tokens``
    (``finish_reason == "length"``) is read only when its first line is complete (a newline
    follows it); otherwise it is ``truncated``.
    """
    text = (reply or "").lstrip()
    if not text:
        return Scores(st.TRUNCATED if finish_reason == "length" else st.PARSE_ERROR,
                      reason="empty reply")
    line, newline, _ = text.partition("\n")
    if finish_reason == "length" and not newline:
        return Scores(st.TRUNCATED, reason="reply cut at max_tokens before the end of its first line")
    tokens = line.replace(",", " ").split()
    if len(tokens) != 2 or not all(_NUMBER_RE.match(t) for t in tokens):
        return Scores(st.PARSE_ERROR, reason=f"first line is not two scores: {line.strip()[:80]!r}")
    scores = (float(tokens[0]), float(tokens[1]))
    if not all(SCORE_MIN <= s <= SCORE_MAX for s in scores):
        return Scores(st.PARSE_ERROR, reason=f"scores {scores} outside [{SCORE_MIN:g}, {SCORE_MAX:g}]")
    return Scores(st.OK, scores=scores)


def sft_baseline_scores(order: str, scores: tuple[float, float]) -> tuple[float, float]:
    """(SFT score, baseline score) from (Assistant 1, Assistant 2) scores in ``order``."""
    return scores if order == "sft_first" else (scores[1], scores[0])


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def combine(sft_first: tuple[float, float] | None, baseline_first: tuple[float, float] | None) -> str:
    """The outcome of one pair from its two judgements, each ``(sft score, baseline score)``.

    The rule of the papers' review script (Reflection-Tuning, Sec. 4.2; Cherry LLM's
    ``review_eval_score.py``): **win** when the SFT answer scores higher in both orders, or
    higher in one and equal in the other; **lose** in the mirror cases; **tie** otherwise
    (equal in both, or higher in one order and lower in the other). A missing judgement
    (``None``: not parsed, cut off, request failed) makes the pair ``failed``, never a tie.
    """
    if sft_first is None or baseline_first is None:
        return FAILED
    signs = {_sign(sft_first[0] - sft_first[1]), _sign(baseline_first[0] - baseline_first[1])}
    if signs in ({1}, {1, 0}):
        return WIN
    if signs in ({-1}, {-1, 0}):
        return LOSE
    return TIE


REFERENCE_FAILED_SCORES = (-1.0, -1.0)


def combine_reference(sft_first: tuple[float, float] | None, baseline_first: tuple[float, float] | None) -> str:
    """:func:`combine` the reference's way: a failed judgement scores -1 for both assistants
    in that order and enters the rule (Cherry_LLM ``evaluation/generation/eval.py:63``,
    ``parse_score`` returns ``[-1, -1]``; ``review_eval_score.py:65-88`` applies the rule to it).
    So one failed order plus a win in the other is a win, and two failures are a tie."""
    return combine(sft_first or REFERENCE_FAILED_SCORES, baseline_first or REFERENCE_FAILED_SCORES)


def winning_score(win: int, tie: int, lose: int) -> float | None:
    """(win - lose) / (win + tie + lose) + 1, in [0, 2]; > 1 means better than the baseline.

    Failed pairs are not in the total (Selective Reflection-Tuning, Sec. 4.1). ``None`` when
    no pair was judged.
    """
    total = win + tie + lose
    return (win - lose) / total + 1 if total else None


def tally(rows: Iterable[Mapping[str, Any]], sets: Sequence[str]) -> dict[str, Any]:
    """Flat metrics from pair rows (``set``, ``outcome``, ``outcome_reference``):
    ``judge_<outcome>``, ``judge_pairs``, ``judge_winning_score`` (failed pairs excluded),
    ``judge_winning_score_reference`` (failures scored -1, see :func:`combine_reference`),
    and the same per set as ``judge_<set>_<…>``.

    Every set in ``sets`` gets its keys (zero when it has no pair), so keys stay stable.
    """
    rows = list(rows)
    out: dict[str, Any] = {}
    for prefix, group in [("judge", rows)] + [(f"judge_{s}", [r for r in rows if r["set"] == s]) for s in sets]:
        counts = {o: sum(r["outcome"] == o for r in group) for o in OUTCOMES}
        out.update({f"{prefix}_{o}": n for o, n in counts.items()})
        out[f"{prefix}_pairs"] = len(group)
        ws = winning_score(counts[WIN], counts[TIE], counts[LOSE])
        out[f"{prefix}_winning_score"] = None if ws is None or math.isnan(ws) else ws
        ref = {o: sum(r.get("outcome_reference") == o for r in group) for o in (WIN, TIE, LOSE)}
        out[f"{prefix}_winning_score_reference"] = winning_score(ref[WIN], ref[TIE], ref[LOSE])
    return out


def plot_rows(metrics: Mapping[str, Any], sets: Sequence[str]) -> list[tuple[str, int, str, str]]:
    """``(label, count, set, outcome)`` per set and overall (``all``), for a DVC horizontal bar plot."""
    out = []
    for s in [*sets, "all"]:
        prefix = "judge" if s == "all" else f"judge_{s}"
        out += [(f"{s} {o}", int(metrics[f"{prefix}_{o}"]), s, o) for o in OUTCOMES]
    return out


_SCORE = {"type": "integer", "minimum": 1, "maximum": 10}


def reply_schema(max_chars: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The JSON schema of a structured reply: the two scores, then a short explanation, bounded
    by ``max_chars["explanation"]`` where bounds are sent (so the reply closes before max_tokens
    on a server that constrains its decoding to the schema). Integer bounds and the string's
    type are keywords OpenAI's strict mode accepts."""
    explanation: dict[str, Any] = {"type": "string", "description": "why, in a few sentences"}
    if max_chars and max_chars.get("explanation"):
        explanation["maxLength"] = max_chars["explanation"]
    return {
        "type": "object",
        "properties": {"score_1": {**_SCORE, "description": "Assistant 1's score"},
                       "score_2": {**_SCORE, "description": "Assistant 2's score"},
                       "explanation": explanation},
        "required": ["score_1", "score_2", "explanation"],
        "additionalProperties": False,
    }


SCHEMA = reply_schema()


class JudgeStep(PromptStep):
    """The pairwise judgement as an LLM step (:class:`reflection_tuning.llm.step.Step`): a row
    ``{id, order, question, answer_1, answer_2}`` becomes one judge request; the reply's two
    scores are the fields ``score_1`` and ``score_2`` (Assistant 1, Assistant 2). A reply cut
    at ``max_tokens`` is read when its first line is complete (:func:`parse_scores`).

    Args:
        prompt: the template (it reads ``question``, ``answer_1``, ``answer_2``) and system prompt.
        max_chars: ``{"explanation": characters}``, the bound sent in the schema (``None``: none).
    """

    name = "judge"
    input_columns = PLACEHOLDERS
    output_fields = ("score_1", "score_2")
    reads_truncated = True

    def __init__(self, prompt: Prompt, max_chars: Mapping[str, int] | None = None) -> None:
        super().__init__(prompt)
        self.schema = reply_schema(max_chars)

    def parse(self, reply: Completion, row: Mapping[str, Any]) -> step.Parsed | step.Failure:
        parsed = parse_scores(reply.content, reply.finish_reason)
        if parsed.scores is None:
            return step.Failure(parsed.status, parsed.reason or "no scores")
        return step.Parsed({"score_1": parsed.scores[0], "score_2": parsed.scores[1]})

    def parse_json(self, obj: Mapping[str, Any], row: Mapping[str, Any]) -> step.Parsed | step.Failure:
        return step.Parsed({"score_1": float(obj["score_1"]), "score_2": float(obj["score_2"])})


def judge_rows(pairs: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
    """The :class:`JudgeStep` rows of every pair (``{id, set, prompt, sft, baseline}``), both
    orders each, ``sft_first`` first."""
    for pair in pairs:
        for order in ORDERS:
            answer_1, answer_2 = order_answers(order, pair["sft"], pair["baseline"])
            yield {"id": pair["id"], "order": order, "question": pair["prompt"], "answer_1": answer_1,
                   "answer_2": answer_2}


def judgement(outcome: Outcome) -> dict[str, Any]:
    """One order's judgement record from the step's outcome for it: ``order``, ``status``,
    ``score_1`` / ``score_2`` (Assistant 1, 2; ``None`` unless ok), ``raw_reply``,
    ``finish_reason``, ``attempts`` and ``error``."""
    c, fields = outcome.completion, outcome.fields or {}
    return {"order": outcome.row["order"], "status": outcome.status, "score_1": fields.get("score_1"),
            "score_2": fields.get("score_2"), "raw_reply": c.content if c else None,
            "finish_reason": c.finish_reason if c else None, "attempts": outcome.attempts,
            "error": None if outcome.ok else outcome.reason}


def pair_row(pair: Mapping[str, Any], judgements: list[dict[str, Any]], judge_model: str, template_hash: str) -> dict:
    """The judgements row of one prompt (``pair``: ``{id, set, prompt, …}``), with the combined
    outcome (failed judgements excluded) and the reference's (failures scored -1)."""
    scores: dict[str, tuple[float, float] | None] = {}
    for j in judgements:
        ok = j["status"] == st.OK
        scores[j["order"]] = sft_baseline_scores(j["order"], (j["score_1"], j["score_2"])) if ok else None
    return {
        "id": pair["id"], "set": pair["set"], "prompt": pair["prompt"],
        "outcome": combine(scores["sft_first"], scores["baseline_first"]),
        "outcome_reference": combine_reference(scores["sft_first"], scores["baseline_first"]),
        "sft_scores": [s[0] if s else None for s in (scores[o] for o in ORDERS)],
        "baseline_scores": [s[1] if s else None for s in (scores[o] for o in ORDERS)],
        "judge_model": judge_model, "template_hash": template_hash, "judgements": judgements,
    }
