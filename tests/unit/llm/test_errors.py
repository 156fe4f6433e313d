"""The errors of a request: an endpoint that refuses or ignores ``response_format`` is named as such."""

from __future__ import annotations

from reflection_tuning.errors import UserError
from reflection_tuning.llm.errors import ReplyFormatUnsupported, TeacherCostCap, TeacherRequestError, format_ignored


def test_a_refused_or_ignored_format_is_a_user_error_saying_what_to_do():
    refused = ReplyFormatUnsupported.refused(TeacherRequestError("HTTP 400: unknown field", 400))
    assert isinstance(refused, UserError) and "refused" in str(refused) and "HTTP 400" in str(refused)
    assert "reply_format: markers" in str(refused)
    ignored = format_ignored("Sure! Here is my answer.")
    assert isinstance(ignored, ReplyFormatUnsupported) and "ignored response_format" in str(ignored)
    assert format_ignored('{"output": "fine"}') is None


def test_a_cost_cap_is_a_request_error_without_status():
    cap = TeacherCostCap("max_cost reached")
    assert isinstance(cap, TeacherRequestError) and cap.status_code is None
