"""Row embeddings from the scoring model: mean-pooled last hidden states, stored beside the scores.

Superfiltering.D and DEITA take sentence embeddings for their diversity step; here the
scoring model's own last layer serves, so no extra model or download is needed (issue 12).
One vector per scored (id, variant): the mean over the non-pad tokens of the final
hidden state (after the final norm) of the text ``prefix + target`` of the ``a_given_q``
pair, the sample as the student reads it, cut to ``max_length`` tokens.

File: ``data/K/embeddings.npz`` with ``ids`` and ``variants`` (unicode arrays, no pickle)
and ``vectors`` (``[n, hidden]`` float32), rows sorted by (id, variant).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reflection_tuning.infra.errors import UserError


def embed_texts(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int = 16,
                progress: bool = True) -> np.ndarray:
    """Mean-pooled last hidden states of ``texts``: ``[len(texts), hidden]`` float32.

    Deterministic: no sampling, eval mode, the same batches for the same texts (sorted by
    length, so padding stays low; the output keeps the input order). Attention masks pads.
    """
    import torch
    from tqdm.auto import tqdm

    base = model.base_model  # the decoder without the vocabulary projection
    hidden = model.config.hidden_size
    out = np.zeros((len(texts), hidden), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    pad_side, tokenizer.padding_side = tokenizer.padding_side, "right"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), batch_size), desc="embed", unit="batch", disable=not progress):
                idx = order[start:start + batch_size]
                enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                                max_length=max_length).to(device)
                states = base(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
                mask = enc.attention_mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
                out[idx] = pooled.float().cpu().numpy()
    finally:
        tokenizer.padding_side = pad_side
    return out


def save_embeddings(path: Path, keys: Sequence[tuple[str, str]], vectors: np.ndarray) -> None:
    """Write ``keys`` ((id, variant) pairs) and ``vectors`` ``[n, d]`` to ``path`` (.npz), sorted by key, atomically."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ids=np.array([keys[i][0] for i in order], dtype=str),
             variants=np.array([keys[i][1] for i in order], dtype=str),
             vectors=np.asarray(vectors, dtype=np.float32)[order] if len(order) else np.zeros((0, 0), np.float32))
    tmp.replace(path)


def load_embeddings(path: Path | None, keys: Sequence[tuple[str, str]]) -> np.ndarray:
    """The stored vectors of ``keys`` ((id, variant) pairs), in that order: ``[len(keys), d]``.

    Raises:
        UserError: no file, or a key without a vector (score ran with ``score.embed: false``).
    """
    if path is None or not Path(path).exists():
        raise UserError(f"select: no embeddings at {path}; set score.embed: true and rerun score")
    with np.load(path, allow_pickle=False) as data:
        index = {(i, v): n for n, (i, v) in enumerate(zip(data["ids"].tolist(), data["variants"].tolist()))}
        missing = [k for k in keys if k not in index]
        if missing:
            raise UserError(f"select: {len(missing)} selected rows have no embedding in {path} (e.g. {missing[0]}); "
                            "set score.embed: true and rerun score")
        return data["vectors"][[index[k] for k in keys]] if keys else np.zeros((0, 1), np.float32)
