"""Batched target-only loss of a causal LM: the four perplexity terms behind IFD and r-IFD.

Given ``(prefix, target)`` text pairs (``templates.scoring_pairs``), :class:`HFScorer`
returns per pair the mean NLL over the target tokens only (nats/token), the number of
target tokens scored, a ``truncated`` flag and a status (``ok`` / ``empty`` / ``nan``).

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

Batching
    Identical requests are scored once. Sequences are sorted by length (longest first, so
    an out-of-memory error comes early) and packed so that ``rows x longest <= batch_tokens``.
    On CUDA OOM a batch is halved and retried. Padding (right or left) comes with an
    attention mask and explicit position ids, so both give the same losses.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from reflection_tuning.scoring.ifd import STATUS_EMPTY, STATUS_NAN, STATUS_OK

log = logging.getLogger(__name__)


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

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.tokens_forward / self.tokens_padded if self.tokens_padded else 0.0


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


def make_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group indices, longest first, so that ``len(batch) * longest <= batch_tokens``.

    A sequence longer than ``batch_tokens`` gets a batch of its own. Returns index lists.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class HFScorer:
    """A Hugging Face causal LM as a :class:`Scorer` (fp32 weights; bf16 autocast on CUDA only).

    Raises:
        ValueError: the tokenizer is not a fast tokenizer (no offsets), or bad sizes.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 1024, batch_tokens: int = 8192,
                 padding_side: str = "right", progress: bool = True) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("the scorer needs a fast tokenizer (offset mappings)")
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        if max_length < 2 or batch_tokens < 1:
            raise ValueError("max_length must be >= 2 and batch_tokens >= 1")
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and max_length > limit:
            log.warning("max_length %d > the model's %d positions: using %d", max_length, limit, limit)
            max_length = limit
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_length, self.batch_tokens, self.padding_side = max_length, batch_tokens, padding_side
        self.progress = progress
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad if pad is not None else 0  # pads are masked out: any id will do
        self.stats = ScorerStats()
        self._oom_tokens: int | None = None  # padded tokens of the smallest batch that ran out of memory

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto", **kwargs: Any) -> HFScorer:
        """Load ``model_dir`` in fp32 with SDPA attention on ``device`` (``auto``/``cpu``/``cuda[:N]``)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
        from reflection_tuning.student import resolve_device

        return cls(model.to(resolve_device(device)), tokenizer, **kwargs)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def score(self, pairs: Sequence[Request | tuple[str, str]]) -> list[PairScore]:
        """Score every pair; the result is in the order of ``pairs``."""
        from tqdm.auto import tqdm

        requests = [p if isinstance(p, Request) else Request(*p) for p in pairs]
        unique = list(dict.fromkeys(requests))  # variants share Q and A: score each pair once
        self.stats.pairs += len(requests)
        self.stats.unique_pairs += len(unique)
        plans = self._plan(unique)
        results: dict[int, PairScore] = {}
        todo = []
        for i, p in enumerate(plans):
            if p.positions:
                todo.append(i)
            else:
                results[i] = PairScore(None, 0, p.target_tokens, p.truncated, STATUS_EMPTY)
        batches = make_batches([len(plans[i].ids) for i in todo], self.batch_tokens)
        with tqdm(total=len(todo), desc="score", unit="pair", disable=not self.progress) as bar:
            for batch in batches:
                idx = [todo[j] for j in batch]
                for i, (total, count) in zip(idx, self._run([plans[i] for i in idx])):
                    p = plans[i]
                    loss = total / count
                    ok = math.isfinite(loss)
                    results[i] = PairScore(loss if ok else None, count, p.target_tokens, p.truncated,
                                           STATUS_OK if ok else STATUS_NAN)
                bar.update(len(idx))
        by_request = {r: results[i] for i, r in enumerate(unique)}
        return [by_request[r] for r in requests]

    def _plan(self, requests: list[Request]) -> list[Plan]:
        if not requests:
            return []
        enc = self.tokenizer([r.prefix + r.target for r in requests], return_offsets_mapping=True,
                             add_special_tokens=True)
        plans = [plan(ids, offs, len(r.prefix), self.max_length, r.max_target_tokens)
                 for r, ids, offs in zip(requests, enc["input_ids"], enc["offset_mapping"])]
        self.stats.straddles += sum(p.straddle for p in plans)
        return plans

    def _run(self, plans: list[Plan]) -> list[tuple[float, int]]:
        """Forward one batch; on CUDA out-of-memory, halve it and retry (one row that OOMs re-raises)."""
        import torch

        padded = len(plans) * max(len(p.ids) for p in plans)
        # After one OOM, batches as big as the one that failed are split up front, not retried.
        if len(plans) > 1 and self._oom_tokens is not None and padded >= self._oom_tokens:
            half = len(plans) // 2
            return self._run(plans[:half]) + self._run(plans[half:])
        try:
            return self._forward(plans)
        except torch.OutOfMemoryError:
            if len(plans) == 1:
                raise
            self.stats.oom_splits += 1
            self._oom_tokens = padded if self._oom_tokens is None else min(self._oom_tokens, padded)
            log.warning("out of memory on a batch of %d rows (%d padded tokens): halving it", len(plans), padded)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(plans) // 2
            return self._run(plans[:half]) + self._run(plans[half:])

    def _forward(self, plans: list[Plan]) -> list[tuple[float, int]]:
        """Summed NLL (nats, fp64) and token count of the scored positions of each plan.

        Tensors: ``input_ids``/``attention_mask``/``position_ids``/``labels`` are ``[B, L]``;
        logits ``[B, L, V]``; the per-token NLL ``[N]`` over the N scored positions.
        """
        import torch
        import torch.nn.functional as F

        device = self.device
        B, L = len(plans), max(len(p.ids) for p in plans)
        input_ids = torch.full((B, L), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((B, L), dtype=torch.long)
        labels = torch.full((B, L), -100, dtype=torch.long)
        for b, p in enumerate(plans):
            off = L - len(p.ids) if self.padding_side == "left" else 0
            input_ids[b, off : off + len(p.ids)] = torch.tensor(p.ids)
            attention_mask[b, off : off + len(p.ids)] = 1
            pos = torch.tensor(p.positions) + off
            labels[b, pos] = input_ids[b, pos]
        # Position ids count real tokens only, so a left-padded row sees 0..n-1 like a right-padded one.
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        input_ids, attention_mask, position_ids, labels = (
            t.to(device) for t in (input_ids, attention_mask, position_ids, labels))
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                    else contextlib.nullcontext())  # fp32 on CPU: bf16 matmuls there are slow and lossy
        with torch.inference_mode(), autocast:
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                use_cache=False).logits
            # Logits at t predict token t+1. Boolean selection (not a 0/1 product) so that any
            # NaN at a padded position cannot leak into a sum.
            shifted = labels[:, 1:]
            sel = shifted != -100
            nll = F.cross_entropy(logits[:, :-1][sel].float(), shifted[sel], reduction="none")
            rows = torch.arange(B, device=device).unsqueeze(1).expand(B, L - 1)[sel]
            sums = torch.zeros(B, dtype=torch.float64, device=device).index_add_(0, rows, nll.double())
        counts = [len(p.positions) for p in plans]
        self.stats.batches += 1
        self.stats.tokens_forward += sum(len(p.ids) for p in plans)
        self.stats.tokens_padded += B * L
        self.stats.tokens_target += sum(counts)
        return list(zip(sums.cpu().tolist(), counts))
