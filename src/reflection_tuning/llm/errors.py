"""What a request raises when it yields no reply: a failure after retries, a request the cost
cap kept back, and an endpoint without structured outputs.
"""

from __future__ import annotations

from reflection_tuning.infra.errors import UserError

# Parameters whose refusal concerns what one request holds (OpenAI's context_length_exceeded names
# ``messages``), not the endpoint.
PER_REQUEST = frozenset({"messages"})

_USE = "use a server with structured outputs (OpenAI, vLLM, llama.cpp) or set reply_format: markers"


class TeacherRequestError(RuntimeError):
    """A request that failed for good (after retries, or not retryable). The message holds no key.

    Attributes:
        status_code: the HTTP status of the last attempt (``None``: no HTTP answer).
        param: the parameter the endpoint named as refused (OpenAI's ``error.param``), if any.
        endpoint_message: the endpoint's own error message (``error.message``), if any.
    """

    def __init__(self, message: str, status_code: int | None = None, *, param: str | None = None,
                 endpoint_message: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.param = param
        self.endpoint_message = endpoint_message or message

    @property
    def refusal(self) -> bool:
        """A final 4xx (not 408, 409 or 429): the endpoint refused the request as it was made."""
        return self.status_code is not None and 400 <= self.status_code < 500 and self.status_code not in (408, 409,
                                                                                                           429)

    @property
    def endpoint_wide(self) -> bool:
        """A refusal that every request of the run would get: a key or a model the endpoint does
        not know (401, 403, 404), or a parameter it names (``param``, or ``response_format`` in its
        words) other than :data:`PER_REQUEST`. A 400 without a parameter may be about one request
        alone (a prompt too long for the context), so it is that row's error."""
        return (self.status_code in (401, 403, 404) or (bool(self.param) and self.param not in PER_REQUEST)
                or "response_format" in self.endpoint_message)


class EndpointRefused(UserError):
    """The endpoint refused the first request of a run, and no adaptation of it is possible (an
    unknown model, a bad key, a parameter it names that cannot be dropped): the stage stops."""

    @classmethod
    def of(cls, exc: TeacherRequestError, model: str, reply_format: str) -> EndpointRefused:
        """The one line for ``exc``: the HTTP status, the refused parameter and the endpoint's words."""
        param = f", param {exc.param}" if exc.param else ""
        hint = ""
        if reply_format == "json_schema" and (exc.param == "response_format" or
                                              "response_format" in exc.endpoint_message):
            hint = " (reply_format: json_schema; reply_format: auto falls back to markers)"
        return cls(f"{model}: the endpoint refused the first request (HTTP {exc.status_code}{param}): "
                   f"{exc.endpoint_message}{hint}")


class ReplyFormatUnsupported(UserError):
    """``reply_format: json_schema`` against an endpoint that ignores ``response_format``."""

    @classmethod
    def ignored(cls, content: str) -> ReplyFormatUnsupported:
        """The error for ``content``, a finished reply to a ``response_format`` request that is not
        a JSON object."""
        return cls("reply_format: json_schema: the endpoint ignored response_format (its first finished reply is "
                   f"not a JSON object: {content[:80]!r}); {_USE}")


class TeacherCostCap(TeacherRequestError):
    """A request not sent because it could take the spend over ``teacher.max_cost``."""

