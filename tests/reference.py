"""Reference computations the tests compare the package against, shared by the unit tests (on the
tiny assets) and the integration tests (on the embedded SmolLM2): written the plain way, one
sequence at a time, independent of the code under test."""

from __future__ import annotations

from typing import Any

import torch

from reflection_tuning.templates import answer, prompt

# answers that open with a word, and answers that open with punctuation (which a byte-level BPE
# may merge with a prompt's final ``:``)
WORD_ANSWERS = ["Hello!", "5", "\u00e9t\u00e9", "Yes, it is."]
PUNCT_ANSWERS = ["(a) 5", "- item one\n- item two", "'quoted'", ".5", ":)"]


def boundary_ok(tok: Any, template: str, text: str) -> bool:
    """Whether the prompt's tokens are a prefix of prompt+answer's with no token across the boundary."""
    p = prompt(template, "Add the numbers.", "2 and 3", tok)
    full = p + answer(template, text)
    ids_p = tok(p, add_special_tokens=False).input_ids
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    # the prompt's tokens are a prefix, and every token ends by the boundary or starts at it
    return enc.input_ids[: len(ids_p)] == ids_p and all(e <= len(p) or s >= len(p) for s, e in enc.offset_mapping)


def naive_loss(model: Any, tokenizer: Any, prefix: str, target: str, keep: int | None = None) -> tuple[float, int]:
    """Mean NLL (nats per token) of the target, batch size 1, no padding, the boundary found as the
    reference does it (``len(encode(prefix))``, independent of the scorer's offsets); ``keep`` target
    tokens at most. Returns (loss, target tokens)."""
    ids = tokenizer(prefix + target).input_ids
    start = max(len(tokenizer(prefix).input_ids) if prefix else 0, 1)  # position 0 has no prediction
    if keep is not None:
        ids = ids[: start + keep]
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].float()
    nll = -torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return nll[start - 1 :].mean().item(), len(ids) - start
