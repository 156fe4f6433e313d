"""Teacher cost: USD from token counts, and a hard cap on what a stage may spend. Pure.

Prices are USD per 1M tokens, as providers quote them (``teacher.price: {input, output}``).
The cap is enforced by *reservation*: before a request is sent, its worst-case cost
(an upper bound on its prompt tokens, plus ``max_tokens`` of output) is reserved; when the
reply arrives the reservation is replaced by what the endpoint reports. A request whose
reservation would take the total over ``max_cost`` is not sent, so with concurrent requests
in flight the spend still never passes the cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PER_TOKENS = 1_000_000
# Per-message overhead of chat templates (role markers, separators), in tokens; generous.
MESSAGE_OVERHEAD_TOKENS = 16


@dataclass(frozen=True)
class Price:
    """USD per 1M prompt (``input``) and completion (``output``) tokens."""

    input: float
    output: float

    @classmethod
    def from_params(cls, price: Mapping[str, float] | None) -> Price | None:
        """``teacher.price`` as a Price (``None`` stays ``None``: cost unknown).

        Raises:
            ValueError: keys other than exactly ``input`` and ``output``, or a negative price.
        """
        if price is None:
            return None
        if set(price) != {"input", "output"}:
            raise ValueError("teacher.price needs exactly the keys input and output (USD per 1M tokens), "
                             f"got {sorted(price)}")
        out = cls(float(price["input"]), float(price["output"]))
        if out.input < 0 or out.output < 0:
            raise ValueError(f"teacher.price must not be negative, got {dict(price)}")
        return out

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for ``prompt_tokens`` in and ``completion_tokens`` out."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / PER_TOKENS


def prompt_tokens_upper_bound(messages: Sequence[Mapping[str, str]]) -> int:
    """An upper bound on the prompt tokens of ``messages`` for any byte-level BPE tokenizer.

    Every such token covers at least one UTF-8 byte, so the byte count bounds the text;
    :data:`MESSAGE_OVERHEAD_TOKENS` per message covers the chat template.
    """
    return sum(len(m.get("content", "").encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS for m in messages)


class CostCapReached(Exception):
    """Sending the request could take the spend over ``teacher.max_cost``."""


class Budget:
    """Reservations against a hard cap, in USD (``cap=None``: no cap, spend still counted).

    Not thread-safe: it is used from one asyncio event loop, between awaits.
    """

    def __init__(self, price: Price | None, cap: float | None) -> None:
        if cap is not None and price is None:
            raise ValueError("teacher.max_cost needs teacher.price to know what a token costs")
        self.price = price
        self.cap = cap
        self.spent = 0.0  # USD reported by the endpoint for the replies that came back
        self.reserved = 0.0  # USD held for requests in flight
        self.refused = 0  # requests not sent because of the cap

    @property
    def reached(self) -> bool:
        """True once a request has been refused."""
        return self.refused > 0

    def reserve(self, prompt_tokens_max: int, max_tokens: int) -> float:
        """Hold the worst-case cost of one request and return it (USD).

        Raises:
            CostCapReached: the hold would take ``spent + reserved`` over the cap; the
                request must not be sent. Every later request is refused too, so the
                stage stops cleanly rather than sending whatever small requests still fit.
        """
        if self.price is None:
            return 0.0
        hold = self.price.cost(prompt_tokens_max, max_tokens)
        if self.cap is not None and (self.reached or self.spent + self.reserved + hold > self.cap):
            self.refused += 1
            raise CostCapReached(
                f"teacher.max_cost ${self.cap:.4f} reached: ${self.spent:.4f} spent, ${self.reserved:.4f} "
                f"held for requests in flight, this request could cost ${hold:.4f}"
            )
        self.reserved += hold
        return hold

    def settle(self, hold: float, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        """Replace a hold by the reported cost (``None`` tokens: the request failed, nothing billed).

        Returns the USD charged. A failed request is counted as free, as providers bill
        only completed requests.
        """
        self.reserved = max(0.0, self.reserved - hold)
        if self.price is None or prompt_tokens is None:
            return 0.0
        charged = self.price.cost(prompt_tokens, completion_tokens or 0)
        self.spent += charged
        return charged
