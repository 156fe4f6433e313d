"""What a request raises when it yields no reply: a failure after retries, a request the cost
cap kept back, and an endpoint without structured outputs.
"""

from __future__ import annotations

from reflection_tuning.errors import UserError
from reflection_tuning.llm.stream import is_json_object

_USE = "use a server with structured outputs (OpenAI, vLLM, llama.cpp) or set reply_format: markers"


class TeacherRequestError(RuntimeError):
    """A request that failed for good (after retries, or not retryable). The message holds no key.

    ``status_code`` is the HTTP status of the last attempt (``None``: no HTTP answer)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ReplyFormatUnsupported(UserError):
    """``reply_format: json_schema`` against an endpoint that rejects or ignores ``response_format``."""

    @classmethod
    def refused(cls, exc: TeacherRequestError) -> ReplyFormatUnsupported:
        """The endpoint answered a request carrying ``response_format`` with HTTP 400/422."""
        return cls(
            f"reply_format: json_schema: the endpoint refused a request carrying response_format ({exc}); {_USE}"
        )


class TeacherCostCap(TeacherRequestError):
    """A request not sent because it could take the spend over ``teacher.max_cost``."""


def format_ignored(content: str) -> ReplyFormatUnsupported | None:
    """The error for a finished reply to a ``response_format`` request that is not a JSON object
    (the endpoint ignored the option), ``None`` for one that is."""
    if is_json_object(content):
        return None
    return ReplyFormatUnsupported("reply_format: json_schema: the endpoint ignored response_format (its first "
                                  f"finished reply is not a JSON object: {content[:80]!r}); {_USE}")
