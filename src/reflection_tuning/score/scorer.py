"""Batched target-only loss of a causal LM: the four perplexity terms behind IFD and r-IFD.

Given ``(prefix, target)`` text pairs (``templates.scoring_pairs``), :class:`HFScorer`
returns per pair the mean NLL over the target tokens only (nats/token), the number of
target tokens scored, a ``truncated`` flag and a status (``ok`` / ``empty`` / ``nan``).

The target tokens (from the tokenizer's offsets: a token straddling the prefix/target
    boundary is prefix), the unscored first position and the truncation to ``max_length``
    are :func:`~reflection_tuning.score.batching.plan`'s rules.

Batching
    Identical requests are scored once. Sequences are sorted by length (longest first, so
    an out-of-memory error comes early) and packed so that ``rows x longest <= batch_tokens``.
    On CUDA OOM a batch is halved and retried. Padding (right or left) comes with an
    attention mask and explicit position ids, so both give the same losses.

Shared prompt prefixes
    Most prefixed pairs start with the same tokens: the template header (the Vicuna system
    prompt), then for PPL(Q|A') the reverse-prompt header. :func:`shared_prefixes` finds the
    prefixes that at least ``min_share`` pairs of a call start with; each is fed once (batch 1)
    and its per-layer key/value states are reused by every batch of those pairs, which feeds
    only the suffixes (causal attention: the prefix states do not depend on what follows).
    On the 32-row benchmark this feeds 14 % fewer tokens; the losses move by < 1e-5 nats
    (fp32 summation order). ``share_prefix=False`` feeds every pair whole.

Data parallel and resume
    With a :class:`~reflection_tuning.score.shard.Shard` of N ranks, each rank computes the
    batches :func:`assign_batches` gives it and the results are gathered; with a
    :class:`~reflection_tuning.score.resume.PairCache`, cached batches are skipped and new
    ones appended. Batches are planned over all unique pairs first in both cases, so a pair's
    loss never depends on the number of ranks or on what was cached.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.score.batching import (  # noqa: F401  (re-exported: the scorer's public types)
    PairScore,
    Plan,
    Request,
    Scorer,
    ScorerStats,
    assign_batches,
    make_batches,
    plan,
    prefix_batches,
    shared_prefixes,
)
from reflection_tuning.score.forward import batch_inputs, nll_sums
from reflection_tuning.score.resume import PairCache
from reflection_tuning.score.shard import Shard, gather

log = logging.getLogger(__name__)

# No row of a batch is more than 10 % padding: on CPU every padded token costs as much as a real one
# (at 0.7 the 32-row benchmark padded 11 % of its tokens; at 0.9, 3 %, for 2x the batches).
MIN_FILL = 0.9
# A prompt prefix is computed once when at least this many pairs of a score() call start with it.
MIN_SHARE = 8


class HFScorer:
    """A Hugging Face causal LM as a :class:`Scorer` (fp32 weights; bf16 autocast on CUDA unless ``bf16=False``).

    ``share_prefix``/``min_share``: feed once the prompt prefixes at least ``min_share`` pairs of a
    call start with (see "Shared prompt prefixes" above). ``min_fill``: no row of a batch shorter
    than this fraction of its longest. ``bf16``: bf16 autocast (None: on CUDA only).

    Raises:
        ValueError: the tokenizer is not a fast tokenizer (no offsets), or bad sizes.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 1024, batch_tokens: int = 8192,
                 padding_side: str = "right", progress: bool = True, cache: PairCache | None = None,
                 shard: Shard | None = None, min_fill: float = MIN_FILL, share_prefix: bool = True,
                 min_share: int = MIN_SHARE, bf16: bool | None = None) -> None:
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
        self.cache, self.shard, self.min_fill = cache, shard or Shard(), min_fill
        self.share_prefix, self.min_share = share_prefix, min_share
        self.bf16 = bf16  # bf16 autocast; None: on CUDA only
        self.progress = progress and self.shard.is_main
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad if pad is not None else 0  # pads are masked out: any id will do
        self.stats = ScorerStats()
        params = inspect.signature(model.forward).parameters
        self._keeps_logits = "logits_to_keep" in params
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
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

    @property
    def precision(self) -> str:
        """How the forward runs (part of the resume cache's fingerprint)."""
        return "bf16-autocast" if self._bf16 else "fp32"

    @property
    def _bf16(self) -> bool:
        return self.device.type == "cuda" if self.bf16 is None else self.bf16

    def score(self, pairs: Sequence[Request | tuple[str, str]]) -> list[PairScore]:
        """Score every pair; the result is in the order of ``pairs``.

        With a :class:`Shard` of several ranks, every rank must call this with the same pairs:
        each computes its batches, and all ranks return the merged result. With a
        :class:`PairCache`, batches found there are not computed and new ones are appended.
        """
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
                results[i] = PairScore(None, 0, p.target_tokens, p.truncated, st.EMPTY)
        batches = prefix_batches(plans, todo, self.batch_tokens, self.min_fill,
                                 self.min_share if self.share_prefix else None)
        owner = assign_batches([len(b) * (len(plans[b[0]].ids) - k) for k, b in batches], self.shard.world)
        mine = [b for b, rank in zip(batches, owner) if rank == self.shard.rank]
        results.update(self._score_batches(unique, plans, mine))
        if self.shard.distributed:
            for part in gather({i: results[i] for _, b in mine for i in b}, self.shard):
                results.update(part)
        by_request = {r: results[i] for i, r in enumerate(unique)}
        return [by_request[r] for r in requests]

    def _score_batches(self, unique: list[Request], plans: list[Plan],
                       batches: list[tuple[int, list[int]]]) -> dict[int, PairScore]:
        """Scores of the plans in ``batches`` (``(k, indices into plans)``), from the cache or the model."""
        from tqdm.auto import tqdm

        out: dict[int, PairScore] = {}
        prefix: tuple[tuple[int, ...], Any] = ((), None)  # the shared prefix in use and its KV cache
        with tqdm(total=sum(len(b) for _, b in batches), desc="score", unit="pair", disable=not self.progress) as bar:
            for k, idx in batches:
                keys = [self.cache.key(unique[i], self.max_length) for i in idx] if self.cache is not None else []
                hit = self.cache.get_all(keys) if self.cache is not None else None
                if hit is not None:
                    self.stats.pairs_cached += len(idx)
                    out.update(zip(idx, hit))
                    bar.update(len(idx))
                    continue
                head = tuple(plans[idx[0]].ids[:k])
                if head != prefix[0]:
                    prefix = (head, self._prefix_kv(head) if k else None)
                scores = []
                for i, (total, count) in zip(idx, self._run([plans[i] for i in idx], k, prefix[1])):
                    p, loss = plans[i], total / count
                    ok = math.isfinite(loss)
                    scores.append(PairScore(loss if ok else None, count, p.target_tokens, p.truncated,
                                            st.OK if ok else st.NAN))
                self.stats.pairs_scored += len(idx)
                self.stats.tokens_prefix_reused += k * len(idx)
                out.update(zip(idx, scores))
                if self.cache is not None:
                    self.cache.put(keys, scores)
                bar.update(len(idx))
        return out

    def _plan(self, requests: list[Request]) -> list[Plan]:
        if not requests:
            return []
        enc = self.tokenizer([r.prefix + r.target for r in requests], return_offsets_mapping=True,
                             add_special_tokens=True)
        plans = [plan(ids, offs, len(r.prefix), self.max_length, r.max_target_tokens)
                 for r, ids, offs in zip(requests, enc["input_ids"], enc["offset_mapping"])]
        self.stats.straddles += sum(p.straddle for p in plans)
        return plans

    def _prefix_kv(self, ids: tuple[int, ...]) -> list[tuple[Any, Any]]:
        """The key/value states ``[1, kv_heads, k, head_dim]`` of each layer for the shared prompt ``ids``."""
        import torch

        extra = {"logits_to_keep": 1} if self._keeps_logits else {}  # no [k, V] logits: only the states
        with torch.inference_mode(), self._autocast():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, **extra)
        cache = getattr(out, self._cache_arg)  # the output field is renamed with the argument
        self.stats.prefixes += 1
        self.stats.tokens_forward += len(ids)
        self.stats.tokens_padded += len(ids)
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _autocast(self) -> Any:
        import torch

        # fp32 on CPU by default: bf16 there moves losses by ~1e-2 nats (score_throughput.py --bf16).
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self._bf16 else contextlib.nullcontext()

    def _run(self, plans: list[Plan], k: int = 0, kv: Any = None) -> list[tuple[float, int]]:
        """Forward one batch; on CUDA out-of-memory, halve it and retry (one row that OOMs re-raises)."""
        import torch

        padded = len(plans) * (max(len(p.ids) for p in plans) - k)
        # After one OOM, batches as big as the one that failed are split up front, not retried.
        if len(plans) > 1 and self._oom_tokens is not None and padded >= self._oom_tokens:
            half = len(plans) // 2
            return self._run(plans[:half], k, kv) + self._run(plans[half:], k, kv)
        try:
            return self._forward(plans, k, kv)
        except torch.OutOfMemoryError:
            if len(plans) == 1:
                raise
            self.stats.oom_splits += 1
            self._oom_tokens = padded if self._oom_tokens is None else min(self._oom_tokens, padded)
            log.warning("out of memory on a batch of %d rows (%d padded tokens): halving it", len(plans), padded)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(plans) // 2
            return self._run(plans[:half], k, kv) + self._run(plans[half:], k, kv)

    def _forward(self, plans: list[Plan], k: int = 0, kv: Any = None) -> list[tuple[float, int]]:
        """Summed NLL (nats, fp64) and token count of the scored positions of each plan.

        The first ``k`` ids of every plan are the shared prefix whose per-layer key/value states
        ``kv`` (``[1, kv_heads, k, head_dim]``) were computed once: only the suffixes are fed
        (:func:`~reflection_tuning.score.forward.batch_inputs`). Logits: ``[N, V]`` at the N
        predicting positions only, where the model takes a boolean ``logits_to_keep``
        (transformers >= 5), else ``[B, L, V]``, then those positions selected.
        """
        import torch

        device = self.device
        batch = batch_inputs(plans, k, self.pad_id, self.padding_side)
        B, L = batch.input_ids.shape
        input_ids, mask, position_ids, keep = (t.to(device) for t in batch[:4])
        past = None
        if kv is not None:
            from transformers import DynamicCache

            # expand() is a view: each layer's cat with the suffix states makes the batch's own copy.
            past = DynamicCache([(kk.expand(B, -1, -1, -1), vv.expand(B, -1, -1, -1)) for kk, vv in kv],
                                config=self.model.config)
        with torch.inference_mode(), self._autocast():
            args = dict(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=past is not None)
            if past is not None:
                args[self._cache_arg] = past
            # Boolean selection (not a 0/1 product): a NaN at a padded position cannot leak into a sum.
            if self._keeps_logits:
                # Project only the predicting positions onto the vocabulary: [N, V], not [B, L, V].
                logits = self.model(**args, logits_to_keep=keep).logits
                logits = logits.reshape(-1, logits.shape[-1])
            else:
                logits = self.model(**args).logits[keep]
            sums = nll_sums(logits, batch.targets, batch.counts)
        self.stats.batches += 1
        self.stats.tokens_forward += sum(len(p.ids) - k for p in plans)
        self.stats.tokens_padded += B * L
        self.stats.tokens_target += sum(batch.counts)
        return list(zip(sums.cpu().tolist(), batch.counts))
