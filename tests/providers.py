"""Local stand-ins for the paid teachers, answering as their providers document it: the fields
they read, the parameters they refuse and the error bodies they refuse them with. They plug
into the loopback chat server of ``tests/unit/conftest.py`` (``FakeOpenAI.reply``).

Sources, each behaviour with where it is written:

- Error bodies: ``{"error": {"message", "type", "param", "code"}}`` with HTTP 400 (OpenAI API
  reference, "Error codes"; platform.openai.com/docs/guides/error-codes).
- Reasoning models (gpt-5 family, o-series): ``max_tokens`` "is not compatible with o-series
  models" and ``max_completion_tokens`` replaces it (API reference, Chat Completions,
  ``max_tokens``: "deprecated in favor of max_completion_tokens"); ``temperature`` other than 1
  and ``top_p`` are refused (platform.openai.com/docs/guides/reasoning, "unsupported
  parameters"). The refusals' words are the API's own, as users quote them: "Unsupported
  parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'
  instead." (param ``max_tokens``, code ``unsupported_parameter``: openhab/openhab-addons#21459,
  IBM/chuk-llm#3), "Unsupported value: 'temperature' does not support 0 with this model. Only
  the default (1) value is supported." (param ``temperature``, code ``unsupported_value``:
  QwenLM/qwen-code#921, BeehiveInnovations/pal-mcp-server#78).
- Strict structured outputs: only a subset of JSON Schema; strings take ``pattern`` and
  ``format``, numbers ``multipleOf``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
  ``exclusiveMaximum``; every property required; ``additionalProperties: false``
  (platform.openai.com/docs/guides/structured-outputs, "Supported schemas"). Any other keyword
  is refused as "Invalid schema for response_format 'NAME': In context=('properties', 'P'),
  'KEYWORD' is not permitted." (param ``response_format``; the words as in
  makenotion/notion-mcp-server#117 for a function schema).
- gpt-4 and gpt-3.5-turbo: no ``json_schema`` (Structured Outputs guide: gpt-4o-mini,
  gpt-4o-2024-08-06 and later), refused as "Invalid parameter: 'response_format' of type
  'json_schema' is not supported with this model." (web-infra-dev/midscene#259).
- An unknown model: HTTP 404, code ``model_not_found``, "The model `X` does not exist or you
  do not have access to it." (Error codes guide).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

STRICT_KEYWORDS = frozenset({
    "type", "description", "properties", "required", "additionalProperties", "enum", "const", "anyOf", "$ref",
    "$defs", "items", "title", "pattern", "format", "multipleOf", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems",
})
WORDS = ("river", "lantern", "orbit", "copper", "meadow", "signal", "harbor", "quartz", "timber", "falcon",
         "ember", "glacier", "canvas", "violet", "engine", "saddle", "pepper", "marble", "thunder", "willow",
         "cipher", "pillar", "garden", "nickel", "summit", "ribbon", "anchor", "beacon", "cobalt", "dune",
         "feather", "gravel", "hollow", "island", "jasper", "kettle", "lilac", "mosaic", "nectar", "oyster")


def error(status: int, message: str, param: str | None, code: str | None):
    from unit.conftest import Failure

    return Failure(status, body={"error": {"message": message, "type": "invalid_request_error", "param": param,
                                           "code": code}})


def prose(seed: str, chars: int) -> str:
    """Varied text of about ``chars`` characters (no phrase repeats: the reply is whole)."""
    rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(f"{rng.choice(WORDS)}{rng.randrange(10_000)}")
    return " ".join(words).capitalize() + "."


def _user(body: dict) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def json_reply(schema: dict, seed: str, chars: int) -> str:
    """A JSON object that follows ``schema``: every string ``chars`` long, integers in range."""
    out: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        if prop["type"] == "integer":
            out[name] = random.Random(seed + name).randint(prop.get("minimum", 1), prop.get("maximum", 10))
        else:
            out[name] = prose(seed + name, min(chars, prop.get("maxLength", chars) - 1))
    return json.dumps(out)


def marked_reply(prompt: str, seed: str, chars: int) -> str:
    """A free-text reply in the markers the prompt asks for."""
    if "Assistant 1" in prompt:
        return f"8 6\n{prose(seed, 200)}"
    critique = prose(seed + "c", 300)
    if "[Better Answer]" in prompt:
        return f"{critique}\n[Better Answer] {prose(seed + 'a', chars)} [End]"
    if "[New Answer]" in prompt:
        return (f"{critique}\n[New Instruction] {prose(seed + 'i', 200)} [End]\n"
                f"[New Answer] {prose(seed + 'a', chars)} [End]")
    return f"[New Instruction] {prose(seed + 'i', 300)} [End]"


def strict_refusal(fmt: dict):
    """The refusal of a strict schema that holds a keyword the strict mode does not take, or ``None``."""
    name, schema = fmt["json_schema"]["name"], fmt["json_schema"]["schema"]
    for prop, sub in schema.get("properties", {}).items():
        for kw in sub:
            if kw not in STRICT_KEYWORDS:
                return error(400, f"Invalid schema for response_format '{name}': In context=('properties', "
                                  f"'{prop}'), '{kw}' is not permitted.", "response_format", None)
    return None


def provider(model: str, *, chars: int = 400) -> Callable[[dict], Any]:
    """The ``FakeOpenAI.reply`` of a provider serving ``model`` as documented (module docstring):

    - ``gpt-5-mini``: a reasoning model (refuses max_tokens, temperature != 1, top_p), strict schemas;
    - ``gpt-4o-mini``: strict structured outputs;
    - ``gpt-4``: no json_schema;
    - ``long-teacher``: any request, answers of ``chars`` characters (give it 3200).
    Any other model is unknown: 404.
    """

    def reply(body: dict):
        if body.get("model") != model or model not in ("gpt-5-mini", "gpt-4o-mini", "gpt-4", "long-teacher"):
            return error(404, f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                         None, "model_not_found")
        if model == "gpt-5-mini":
            if "max_tokens" in body:
                return error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                                  "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
            if body.get("temperature", 1) != 1:
                return error(400, f"Unsupported value: 'temperature' does not support {body['temperature']} with "
                                  "this model. Only the default (1) value is supported.", "temperature",
                             "unsupported_value")
            if "top_p" in body:
                return error(400, "Unsupported parameter: 'top_p' is not supported with this model.", "top_p",
                             "unsupported_parameter")
        fmt = body.get("response_format")
        if fmt and fmt.get("type") == "json_schema":
            if model == "gpt-4":
                return error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                  "with this model.", "response_format", None)
            if model != "long-teacher" and (refused := strict_refusal(fmt)) is not None:
                return refused
        seed = _user(body)
        if fmt:
            return json_reply(fmt["json_schema"]["schema"], seed, chars), "stop"
        return marked_reply(seed, seed, chars), "stop"

    return reply
