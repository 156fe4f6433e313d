"""``reflection-tuning estimate``: the tokens and USD a reflection run will cost, before
anything is sent.

It builds exactly the requests the two reflection stages would send for a dataset and
prices the ones the request cache cannot answer:

- prompt tokens: counted with the teacher's own tokenizer and chat template when one can
  be loaded without the network (a local model directory, or the HF cache), with tiktoken
  otherwise, and as UTF-8 bytes / 4 when neither is available (the method is reported);
- completion tokens: the mean of the replies already cached for these requests when there
  are any, else ``teacher.max_tokens`` (an upper bound); the worst case is reported too.

``response`` requests for the ``both`` variant depend on the instruction stage's output:
when ``data/K/instruction.jsonl`` does not exist yet, every instruction reflection is
assumed to succeed, with the original row's size.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reflection_tuning.infra.command import Call, Flag, PathSpec, Section, Stage
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.llm.cache import Messages, ReplyCache, cache_key
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.request import Adaptations, adaptations_name
from reflection_tuning.llm.step import Step, request_format
from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.prompt import PromptFiles
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse, plan

log = logging.getLogger(__name__)
Counter = Callable[[Messages], int]


def _tokenizer_counter(model: str) -> Counter | None:
    try:
        from transformers import AutoTokenizer

        path = Path(model)
        if path.suffix == ".gguf" and path.is_file():  # the embedded server's model: its tokenizer is inside
            tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        else:
            tok = AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available offline"
        log.debug("no local tokenizer for %s: %s", model, exc)
        return None
    if getattr(tok, "chat_template", None):
        def count(messages: Messages) -> int:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return len(tok(text, add_special_tokens=False)["input_ids"])

        return count
    return lambda m: sum(len(tok.encode(x["content"])) + 4 for x in m)


def _tiktoken_counter(model: str) -> Counter | None:
    try:
        import tiktoken

        try:
            enc = tiktoken.encoding_for_model(model)
        except KeyError:
            enc = tiktoken.get_encoding("o200k_base")
        enc.encode("probe")  # the encoding file is downloaded on first use
    except Exception as exc:  # noqa: BLE001 - not installed, or its files cannot be fetched
        log.debug("tiktoken unavailable for %s: %s", model, exc)
        return None
    return lambda m: sum(len(enc.encode(x["content"])) + 4 for x in m) + 3  # OpenAI's chat overhead


def token_counter(model: str) -> tuple[str, Counter]:
    """The best prompt-token counter available offline: (method, count(messages) -> tokens)."""
    if (count := _tokenizer_counter(model)) is not None:
        return "tokenizer", count
    if (count := _tiktoken_counter(model)) is not None:
        return "tiktoken", count
    log.warning("no tokenizer for %s offline and no tiktoken encoding: counting UTF-8 bytes / 4", model)
    return "bytes/4", lambda m: sum(len(x["content"].encode("utf-8")) // 4 + 4 for x in m)


def estimate_requests(
    cfg: EndpointConfig, batch: Sequence[Messages], template_hash: str, cache: ReplyCache, count: Counter,
    response_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tokens and USD for one stage's requests (pure but for the cache lookups).

    ``template_hash`` and ``response_format`` (:func:`~reflection_tuning.llm.step.request_format`)
    are the step's, as in the keys the stage caches its replies under.

    Returns a flat dict: ``requests``, ``cached``, ``to_send``, ``prompt_tokens`` (to send),
    ``completion_tokens_expected`` / ``completion_tokens_max`` (to send; the max counts
    every request re-asked ``teacher.reask`` times),
    ``cost_usd_expected`` / ``cost_usd_max`` (``None`` without ``teacher.price``).
    """
    hits, misses = [], []
    adaptations = Adaptations.held(cache.meta(adaptations_name(cfg)), cfg.reply_format)  # as the stage holds them
    for messages in batch:
        hit = cache.get(cache_key(cfg, messages, template_hash, response_format, adaptations))
        (hits if hit is not None else misses).append(hit if hit is not None else messages)
    mean_out = sum(h.completion_tokens for h in hits) / len(hits) if hits else float(cfg.max_tokens)
    prompt_tokens = sum(count(m) for m in misses)
    expected_out = round(mean_out * len(misses))
    asks = 1 + cfg.reask  # the worst case: every reply re-asked (``teacher.reask``)
    max_out = cfg.max_tokens * len(misses) * asks
    price = cfg.price_usd()
    return {
        "requests": len(batch),
        "cached": len(hits),
        "to_send": len(misses),
        "prompt_tokens": prompt_tokens,
        "completion_tokens_expected": expected_out,
        "completion_tokens_max": max_out,
        "cost_usd_expected": round(price.cost(prompt_tokens, expected_out), 6) if price else None,
        "cost_usd_max": round(price.cost(prompt_tokens * asks, max_out), 6) if price else None,
    }


def stage_requests(instruction_step: Step, response_step: Step, originals: list[dict],
                   reflected: list[dict] | None) -> tuple[list[Messages], list[Messages]]:
    """The requests of ``reflect_instruction`` and of ``reflect_response``, in stage order, built
    by the steps' own ``format_input``. Without ``reflected`` every instruction reflection is
    assumed ok, with the original row's size."""
    first = [instruction_step.format_input(r) for r in originals]
    if reflected is None:
        sent = originals + originals
    else:
        sent = [row for _, row, why in plan(originals, reflected) if why is None]
    second = [response_step.format_input(r) for r in sent]
    return first, second


def run(teacher_cfg: EndpointConfig, instruction: PromptFiles, response: PromptFiles,
        original: Path, instruction_rows: Path | None) -> dict[str, Any]:
    """The estimate for both reflection stages, as a flat dict (``<stage>_<key>`` plus totals).
    """
    originals = read_jsonl(original)
    reflected = read_jsonl(instruction_rows) if instruction_rows and instruction_rows.is_file() else None
    bounded = teacher_cfg.bounded  # the stages' own requests: the bounds sentence is part of the prompt
    steps = [ReflectInstruction(instruction.prompt(FIELDS), instruction.checks(bounded)),
             ReflectResponse(response.prompt(FIELDS), response.checks(bounded))]
    batches = stage_requests(steps[0], steps[1], originals, reflected)
    method, count = token_counter(teacher_cfg.model)
    cache = ReplyCache(teacher_cfg.cache_dir)
    out: dict[str, Any] = {"teacher_model": teacher_cfg.model, "token_count_method": method,
                           "both_assumed": reflected is None}
    try:
        for stage, step, batch in zip(("reflect_instruction", "reflect_response"), steps, batches):
            fmt = request_format(step, teacher_cfg)
            for k, v in estimate_requests(teacher_cfg, batch, step.template_hash, cache, count, fmt).items():
                out[f"{stage}_{k}"] = v
    finally:
        cache.close()
    for k in ("to_send", "prompt_tokens", "completion_tokens_expected", "completion_tokens_max",
              "cost_usd_expected", "cost_usd_max"):
        parts = [out[f"{s}_{k}"] for s in ("reflect_instruction", "reflect_response")]
        out[f"total_{k}"] = None if None in parts else round(sum(parts), 6)
    return out


def invoke(call: Call) -> None:
    """Print the estimate, one key a line (and write it as JSON to ``--output``)."""
    result = run(*call.configs, call.inputs["original"], call.inputs["instruction"])
    width = max(map(len, result))
    sys.stdout.write("".join(f"{k:<{width}}  {v}\n" for k, v in result.items()))
    if call.args.output:
        call.args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# A command, not a stage: it reads what the two reflection stages read, and writes nothing but --output.
STAGE = Stage(
    "estimate", __doc__,
    sections=(Section(EndpointConfig, "teacher"),
              Section(PromptFiles, "reflect_instruction", prefix="instruction"),
              Section(PromptFiles, "reflect_response", prefix="response")),
    # reflect_response's inputs; without instruction rows every reflection is assumed ok
    inputs={"original": PathSpec("data/{dataset}/original.jsonl", flag="input"),
            "instruction": PathSpec("data/{dataset}/instruction.jsonl", optional=True, must_exist=False)},
    flags=(Flag("--output", type=Path, default=None, help="also write the estimate as JSON here"),),
    invoke=invoke,
)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
