"""What the scorer batches: requests, per-pair scores, counters, and the pure planning steps.

:func:`plan` finds the target tokens of one tokenized ``prefix + target`` from its offsets
and truncates it; :func:`shared_prefixes` finds the prompt prefixes many pairs start with (computed once);
:func:`make_batches` packs plans into token-bounded batches;
:func:`assign_batches` spreads batches over data-parallel ranks. No torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class Request(NamedTuple):
    """One pair to score. ``max_target_tokens`` caps the target tokens scored (None = no cap)."""

    prefix: str
    target: str
    max_target_tokens: int | None = None


class PairScore(NamedTuple):
    """The score of one pair.

    ``loss``: mean NLL over the scored target tokens, nats/token (None unless ``ok``).
    ``tokens``: target tokens scored. ``target_tokens``: target tokens before truncation
    (excluding position 0). ``truncated``: some target token was cut. ``status``: ``ok``,
    ``empty`` (no target token to score) or ``nan`` (the loss is not finite).
    """

    loss: float | None
    tokens: int
    target_tokens: int
    truncated: bool
    status: str


@dataclass
class ScorerStats:
    """Counters over every ``score`` call of one scorer (tokens are token counts)."""

    pairs: int = 0
    unique_pairs: int = 0
    batches: int = 0
    tokens_forward: int = 0  # real (non-pad) tokens through the model
    tokens_padded: int = 0  # rows x longest, summed over batches
    tokens_target: int = 0  # target tokens scored
    straddles: int = 0
    oom_splits: int = 0
    pairs_scored: int = 0  # pairs that went through the model in this run
    pairs_cached: int = 0  # pairs taken from the resume cache instead
    prefixes: int = 0  # shared prompt prefixes computed once and reused by a group of pairs
    tokens_prefix_reused: int = 0  # prompt tokens not recomputed thanks to those shared prefixes

    # Every rank plans all requests, so these are the same on every rank; the rest is per-rank work.
    SHARED = ("pairs", "unique_pairs", "straddles")

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.tokens_forward / self.tokens_padded if self.tokens_padded else 0.0

    @classmethod
    def merge(cls, parts: Sequence[ScorerStats]) -> ScorerStats:
        """The stats of a data-parallel job from each rank's (rank 0 first): work is summed."""
        out = cls(**dataclasses.asdict(parts[0]))
        for f in dataclasses.fields(cls):
            if f.name not in cls.SHARED:
                setattr(out, f.name, sum(getattr(p, f.name) for p in parts))
        return out


class Scorer(Protocol):
    """What the score stage needs from a scorer (tests may pass a fake)."""

    tokenizer: Any
    stats: ScorerStats

    def score(self, pairs: Sequence[Request | tuple[str, str]]) -> list[PairScore]: ...


class Plan(NamedTuple):
    """A tokenized pair, ready to batch: ``ids[:length]`` is fed, ``positions`` are scored."""

    ids: list[int]
    positions: list[int]  # indices into ids of the scored target tokens (all >= 1)
    target_tokens: int
    truncated: bool
    straddle: bool


def plan(ids: Sequence[int], offsets: Sequence[tuple[int, int]], prefix_len: int, max_length: int,
         max_target_tokens: int | None = None) -> Plan:
    """Pick the target tokens of one tokenized ``prefix + target`` and truncate it.

    Tokenization and the prefix/target boundary
        ``prefix + target`` is tokenized once, as the model will see it, with
        ``return_offsets_mapping=True``. A token is a target token iff its character span is
        non-empty and starts at or after ``len(prefix)``. A token that straddles the boundary
        (starts inside the prefix, ends inside the target) is therefore prefix: its loss is
        not counted, as in the reference scorer, which masks ``len(encode(prefix))`` tokens.
        Such merges are rare (BPE pre-tokenizers split at spaces/punctuation); they are
        counted in :attr:`ScorerStats.straddles`. Special tokens added by the tokenizer (a
        BOS) have an empty span, so they are never targets.

    The first token of a sequence has no prediction
        Position 0 is never scored. With an empty prefix and a tokenizer that adds no BOS
        (SmolLM2), "A alone" covers target tokens 2..n, like the reference's
        ``labels=input_ids`` loss; a one-token target alone has nothing to score: ``empty``.

    Truncation to ``max_length`` tokens (and an optional per-pair ``max_target_tokens``)
        keeps the whole prompt and cuts the target from the end; ``truncated`` is recorded per
        pair. A prompt that leaves no target token is ``empty`` with ``truncated=True``.

    Args:
        ids, offsets: ``input_ids`` and ``offset_mapping`` of the whole text (same length n).
        prefix_len: ``len(prefix)`` in characters.
        max_length: most tokens fed to the model; the target is cut from the end.
        max_target_tokens: most target tokens scored, or None.
    """
    target = [i for i, (s, e) in enumerate(offsets) if e > s and s >= prefix_len]
    straddle = any(s < prefix_len < e for s, e in offsets)
    scorable = [i for i in target if i >= 1]  # position 0 has no prediction
    kept = [i for i in scorable if i < max_length]
    if max_target_tokens is not None:
        kept = kept[: max(0, max_target_tokens)]
    end = kept[-1] + 1 if kept else 0
    return Plan(list(ids[:end]), kept, len(scorable), len(kept) < len(scorable), straddle)


def make_batches(lengths: Sequence[int], batch_tokens: int, min_fill: float = 0.0) -> list[list[int]]:
    """Group indices, longest first, so that ``len(batch) * longest <= batch_tokens``.

    A sequence shorter than ``min_fill * longest`` of the open batch starts a new one, so no
    row is more than ``1 - min_fill`` padding (with few rows, lengths are far apart; with
    many, neighbours in length order are close and this rarely splits). A sequence longer
    than ``batch_tokens`` gets a batch of its own. Returns index lists.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        longest = lengths[batches[-1][0]] if batches else 0
        if batches and (len(batches[-1]) + 1) * longest <= batch_tokens and lengths[i] >= min_fill * longest:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def shared_prefixes(prompts: Sequence[Sequence[int]], min_share: int = 8, min_tokens: int = 8) -> list[int]:
    """How many leading tokens of each prompt to compute once and share with other prompts.

    ``prompts[i]`` are the token ids of pair i that no scored position depends on being
    recomputed (its ids before the position predicting the first target token). Builds a
    trie of the prompts and walks each one down while at least ``min_share`` prompts pass
    through the node: the deepest such node is the shared prefix (the template header, the
    reverse-prompt header). Prefixes under ``min_tokens`` tokens are not worth a separate
    forward pass and give 0. Pure Python, O(total prompt tokens).
    """
    root: dict = {}
    counts: dict[int, int] = {}  # id(node) -> prompts passing through it
    for ids in prompts:
        node = root
        for t in ids:
            node = node.setdefault(t, {})
            counts[id(node)] = counts.get(id(node), 0) + 1
    out = []
    for ids in prompts:
        node, depth = root, 0
        for t in ids:
            node = node[t]
            if counts[id(node)] < min_share:
                break
            depth += 1
        out.append(depth if depth >= min_tokens else 0)
    return out


def prefix_batches(plans: Sequence[Plan], todo: Sequence[int], batch_tokens: int, min_fill: float,
                   min_share: int | None) -> list[tuple[int, list[int]]]:
    """``(k, indices into plans)`` batches of the plans in ``todo`` (each with a scored position).

    Every plan of a batch starts with the same ``k`` prompt tokens, to be fed once
    (:func:`shared_prefixes`, ``min_share=None``: k = 0 everywhere); each group is packed by
    :func:`make_batches` on its suffix lengths. Groups come shortest prefix first, so the
    order does not depend on anything but the plans.
    """
    # The cacheable part ends before the position that predicts the first target token.
    prompts = [plans[i].ids[: plans[i].positions[0] - 1] for i in todo]
    ks = shared_prefixes(prompts, min_share) if min_share is not None else [0] * len(todo)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, k in zip(todo, ks):
        groups.setdefault(tuple(plans[i].ids[:k]), []).append(i)
    out = []
    for key, members in sorted(groups.items(), key=lambda g: (len(g[0]), g[0])):
        lengths = [len(plans[i].ids) - len(key) for i in members]
        out += [(len(key), [members[j] for j in b]) for b in make_batches(lengths, batch_tokens, min_fill)]
    return out


def assign_batches(costs: Sequence[int], world: int) -> list[int]:
    """The rank (0..world-1) of each batch: greedy, in order, to the least-loaded rank so far.

    ``costs`` are padded tokens per batch, longest first as :func:`make_batches` orders them
    (so the greedy is the LPT rule). Deterministic: ties go to the lowest rank. Whole batches
    move, never single rows, so a pair's loss does not depend on the number of ranks.
    """
    load = [0] * world
    owner = []
    for cost in costs:
        rank = min(range(world), key=lambda r: (load[r], r))
        load[rank] += cost
        owner.append(rank)
    return owner
