"""The errors of a request: an endpoint that refuses or ignores ``response_format`` is named as such."""

from __future__ import annotations

from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.errors import (
    EndpointRefused,
    ReplyFormatUnsupported,
    TeacherCostCap,
    TeacherRequestError,
)


def test_a_refused_or_ignored_format_is_a_user_error_saying_what_to_do():
    exc = TeacherRequestError("HTTP 400: …", 400, param="response_format",
                              endpoint_message="Invalid parameter: 'response_format' of type 'json_schema' is not "
                                               "supported with this model.")
    refused = EndpointRefused.of(exc, "gpt-4", "json_schema")
    assert isinstance(refused, UserError) and "HTTP 400, param response_format" in str(refused)
    assert "is not supported with this model" in str(refused) and "reply_format: auto" in str(refused)
    assert exc.refusal and not TeacherRequestError("x", 429).refusal and not TeacherRequestError("x").refusal
    ignored = ReplyFormatUnsupported.ignored("Sure! Here is my answer.")
    assert isinstance(ignored, UserError) and "ignored response_format" in str(ignored)


def test_a_cost_cap_is_a_request_error_without_status():
    cap = TeacherCostCap("max_cost reached")
    assert isinstance(cap, TeacherRequestError) and cap.status_code is None
