"""The embedded server's helpers and its errors before a process starts (a real start:
tests/integration/llm/test_server.py)."""

from __future__ import annotations

import pytest

from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.server import Served, cpu_cores, embedded_server, free_port, slot_context


def test_helpers():
    assert 1024 <= free_port() <= 65535
    assert cpu_cores() >= 1
    served = Served("http://127.0.0.1:8080/v1", 1, None)  # type: ignore[arg-type]
    assert served.root == "http://127.0.0.1:8080"


@pytest.mark.parametrize("make", [lambda p: p / "nope.gguf", lambda p: p])  # missing, and a directory
def test_a_model_that_is_no_file_is_a_clear_error(tmp_path, make):
    server = embedded_server(make(tmp_path))
    with pytest.raises(UserError, match="is not a GGUF file; run `reflection-tuning models`"):
        server.__enter__()


def test_a_slot_holds_the_longest_prompt_and_its_reply():
    def batch(*chars: int) -> list[list[dict[str, str]]]:
        return [[{"role": "user", "content": "x" * n}] for n in chars]

    # 3 characters a token plus 64 of chat template, plus max_tokens, rounded up to 256
    assert slot_context(batch(150, 30), 50) == 256 and slot_context(batch(300), 100) == 512
    assert slot_context(batch(3000, 10), 1024) == -(-(1000 + 64 + 1024) // 256) * 256 == 2304
    assert slot_context(batch(3000), 1024, feedback=True) == -(-(1000 + 64 + 2048) // 256) * 256
    assert slot_context([], 100) == 256  # no request: the reply alone
