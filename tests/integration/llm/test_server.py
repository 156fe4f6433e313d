"""The real embedded server (llama.cpp's, through xllamacpp): its start, its endpoints, a start
that fails (the happy path of the stages: tests/integration/stages/test_reflect.py)."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import openai
import pytest

from reflection_tuning.llm.server import embedded_server, serve_embedded


def test_a_file_that_is_no_gguf_reports_the_server_log_tail(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    server = embedded_server(bad, startup_timeout=60)
    with pytest.raises(RuntimeError) as err:
        server.__enter__()
    message = str(err.value)
    assert "exited with code" in message and "broken.gguf" in message
    log = re.search(r"log (\S+\.log):", message)
    assert log and Path(log.group(1)).exists()  # kept for inspection after a failure
    Path(log.group(1)).unlink()


def test_slots_seeds_and_a_json_schema_reply(embedded_gguf):
    """The server has the asked-for slots; a seed makes a sampled reply repeatable and another
    seed changes it; a ``response_format`` in the nested OpenAI form gives JSON of that schema."""
    schema = {"type": "object", "properties": {"colour": {"type": "string", "minLength": 3, "maxLength": 20}},
              "required": ["colour"], "additionalProperties": False}
    messages = [{"role": "user", "content": "Name a colour, and say why you like it."}]
    with serve_embedded(embedded_gguf, parallel=2, slot_ctx=1024) as served:
        with urllib.request.urlopen(f"{served.root}/slots", timeout=10) as r:
            slots = json.loads(r.read())
        assert len(slots) == 2 and {s["n_ctx"] for s in slots} == {1024}
        client = openai.OpenAI(base_url=served.url, api_key="no-key", max_retries=0)

        def ask(seed: int, **kw) -> str:
            reply = client.chat.completions.create(model="m", messages=messages, max_tokens=48, temperature=1.0,
                                                   seed=seed, **kw)
            return reply.choices[0].message.content

        assert ask(1) == ask(1)
        assert len({ask(s) for s in (1, 2, 3)}) > 1
        fmt = {"type": "json_schema", "json_schema": {"name": "colour", "schema": schema, "strict": True}}
        reply = json.loads(ask(1, response_format=fmt))
        assert set(reply) == {"colour"} and 3 <= len(reply["colour"]) <= 20
