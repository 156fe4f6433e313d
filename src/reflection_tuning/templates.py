"""Student prompt templates and the texts the four perplexities are computed on.

The templates are the ones of the reference scoring code (Selective Reflection-Tuning,
arXiv 2402.10110, and Cherry LLM's IFD, arXiv 2308.12032): ``alpaca`` (Stanford Alpaca),
``vicuna`` (FastChat v1.1), ``wizardlm``, and ``chat``, the student's own chat template.
There is no separator between a prompt and its target: the target follows
``### Response:`` (or ``ASSISTANT:``) directly, as in the reference.
"""

from __future__ import annotations

from typing import Any, NamedTuple

TEMPLATES = ("alpaca", "vicuna", "wizardlm", "chat")

ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
ALPACA_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
VICUNA_NO_INPUT = VICUNA_SYSTEM + " USER: {instruction} ASSISTANT:"
VICUNA_INPUT = VICUNA_SYSTEM + " USER: {instruction}\nInput:\n{input} ASSISTANT:"
WIZARDLM_NO_INPUT = "{instruction}\n\n### Response:"
WIZARDLM_INPUT = "{instruction}\n{input}\n\n### Response:"

_FORMATS = {
    "alpaca": (ALPACA_NO_INPUT, ALPACA_INPUT),
    "vicuna": (VICUNA_NO_INPUT, VICUNA_INPUT),
    "wizardlm": (WIZARDLM_NO_INPUT, WIZARDLM_INPUT),
}

# Selective Reflection-Tuning, Sec. 3.2: the reverse prompt put in the instruction slot to
# compute PPL(Q | A'), where the student guesses the instruction from the response.
REVERSE_PROMPT = (
    "Below is the response to an instruction, please guess the corresponding instruction "
    "for the given response.\n{output}\nGenerate the instruction for the above response."
)


class Pair(NamedTuple):
    """A (prefix, target) text pair: the loss is taken over the target tokens only."""

    prefix: str
    target: str


def prompt(template: str, instruction: str, input: str = "", tokenizer: Any = None) -> str:
    """The student prompt for one instruction (and optional input), ending where the answer starts.

    Raises:
        ValueError: unknown template, or ``chat`` without a tokenizer that has a chat template.
    """
    if template in _FORMATS:
        no_input, with_input = _FORMATS[template]
        if input:
            return with_input.format_map({"instruction": instruction, "input": input})
        return no_input.format_map({"instruction": instruction})
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'chat' needs a tokenizer with a chat template")
        content = f"{instruction}\n\n{input}" if input else instruction
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")


def reverse_prompt(output: str) -> str:
    """The r-IFD reverse prompt A' for response ``output`` (it fills the instruction slot)."""
    return REVERSE_PROMPT.format_map({"output": output})


def scoring_pairs(
    template: str, instruction: str, input: str, output: str, tokenizer: Any = None
) -> dict[str, Pair]:
    """The four (prefix, target) pairs behind IFD and r-IFD for one sample.

    Keys: ``a_given_q`` (A after the prompt with Q), ``a`` (A alone), ``q_given_a`` (Q after
    the template filled with the reverse prompt), ``q`` (Q alone). Q is the instruction
    followed directly by the input, as in the reference code (Selective Reflection-Tuning).
    """
    question = instruction + input
    return {
        "a_given_q": Pair(prompt(template, instruction, input, tokenizer), output),
        "a": Pair("", output),
        "q_given_a": Pair(prompt(template, reverse_prompt(output), "", tokenizer), question),
        "q": Pair("", question),
    }
