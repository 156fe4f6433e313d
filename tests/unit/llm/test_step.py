"""The step contract's helper: a structured reply decoded and validated against the step's schema
(a parse_error saying why otherwise)."""

from __future__ import annotations

import json

from reflection_tuning.llm.step import Failure, decode_json_reply
from reflection_tuning.status import PARSE_ERROR

SCHEMA = {"type": "object", "properties": {"critique": {"type": "string"}, "output": {"type": "string"}},
          "required": ["critique", "output"], "additionalProperties": False}


def test_a_reply_that_matches_is_its_object():
    reply = {"critique": "Too short.", "output": "Eat well, sleep, move."}
    assert decode_json_reply(json.dumps(reply), SCHEMA) == reply


def test_unusable_replies_are_parse_errors_with_a_reason():
    cut = decode_json_reply('{"critique": "Too sh', SCHEMA)
    assert isinstance(cut, Failure) and cut.status == PARSE_ERROR and cut.reason.startswith("reply is not JSON")
    for bad in ({"critique": "x"}, {"critique": "x", "output": 3}, {"critique": "x", "output": "y", "extra": "z"}):
        got = decode_json_reply(json.dumps(bad), SCHEMA)
        assert isinstance(got, Failure) and got.status == PARSE_ERROR
        assert got.reason.startswith("reply does not match the step's schema") and len(got.reason) < 260
