"""Student prompt templates and the texts the four perplexities are computed on.

The templates are the ones of the reference scoring code (Selective Reflection-Tuning,
arXiv 2402.10110, and Cherry LLM's IFD, arXiv 2308.12032): ``alpaca`` (Stanford Alpaca),
``vicuna`` (FastChat v1.1), ``wizardlm``, ``bare`` (Superfiltering's proxy-scorer prompt,
``code_ifd/data_analysis.py``: ``{instruction}\n{input}\n`` and nothing else), and ``chat``,
the student's own chat template.

One turn format for training, scoring and generation. A prompt ends where the answer
starts (``### Response:``, ``ASSISTANT:``); the answer text is :func:`answer` =
``SEPARATORS[template] + output``. For ``vicuna`` the separator is one space, as FastChat
writes the turn (``ASSISTANT: `` + answer, ``Conversation.get_prompt`` with
``SeparatorStyle.ADD_COLON_TWO``); the space belongs to the answer, so it opens the
answer's first token (``Ġanswer`` in a byte-level BPE, ``▁answer`` in SentencePiece) and
the prompt's tokens are a prefix of the prompt+answer tokens. A space at the end of the
prompt instead would be a token of its own that the trained model never sees before an
answer. ``alpaca``, ``wizardlm`` and ``bare`` join with no separator, as Stanford Alpaca's
training code and the reference scorers do. (The reference scorer also writes the Vicuna
answer directly after ``ASSISTANT:``; we do not: scoring uses the training format.)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from reflection_tuning.rows import INPUT_MODES, merge_input

TEMPLATES = ("alpaca", "vicuna", "wizardlm", "bare", "chat")
# The papers' training template (FastChat Vicuna); the scoring template defaults to finetune.template.
DEFAULT_TEMPLATE = "vicuna"
# What goes between a prompt and its answer (see the module doc).
SEPARATORS = {"alpaca": "", "vicuna": " ", "wizardlm": "", "bare": "", "chat": ""}

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
# Superfiltering's PROMPT_DICT_NONE (code_ifd/data_analysis.py): no system text, no role markers.
BARE_NO_INPUT = "{instruction}\n"
BARE_INPUT = "{instruction}\n{input}\n"

_FORMATS = {
    "alpaca": (ALPACA_NO_INPUT, ALPACA_INPUT),
    "vicuna": (VICUNA_NO_INPUT, VICUNA_INPUT),
    "wizardlm": (WIZARDLM_NO_INPUT, WIZARDLM_INPUT),
    "bare": (BARE_NO_INPUT, BARE_INPUT),
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
        content = merge_input(instruction, input)
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")


def answer(template: str, output: str) -> str:
    """The answer text as it follows :func:`prompt`: ``SEPARATORS[template] + output`` ("" stays "").

    An empty output stays empty, so that scoring it is an explicit ``empty`` failure, not
    the loss of a lone separator.

    finetune trains on ``prompt + answer + eos``; score takes the loss over ``answer``;
    generate prompts with :func:`prompt` and strips the decoded answer.

    Raises:
        ValueError: unknown template.
    """
    if template not in SEPARATORS:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    return SEPARATORS[template] + output if output else ""


def reverse_prompt(output: str) -> str:
    """The r-IFD reverse prompt A' for response ``output`` (it fills the instruction slot)."""
    return REVERSE_PROMPT.format_map({"output": output})


def scoring_pairs(
    template: str, instruction: str, input: str, output: str, tokenizer: Any = None, input_mode: str = "merge"
) -> dict[str, Pair]:
    """The four (prefix, target) pairs behind IFD and r-IFD for one sample.

    Keys: ``a_given_q`` (A after the prompt with Q), ``a`` (A alone), ``q_given_a`` (Q after
    the template filled with the reverse prompt), ``q`` (Q alone). Each target is written as
    :func:`answer` writes it (a leading space for ``vicuna``), alone as after its prompt, so
    that both perplexities of a ratio cover the same text.

    ``input_mode``:
        ``merge`` (default): Q is ``rows.merge_input(instruction, input)`` and every prompt
        has the no-input shape. A reflected instruction has no input, so IFD(instruction)
        and IFD(original) are computed on prompts of the same shape (the reference merged
        the input into the instruction before scoring: its compressed Alpaca file has no
        ``input`` field). A row whose input is empty is unchanged.
        ``keep``: the with-input template when there is an input, and Q is the instruction
        followed directly by the input, as the reference scorer does with an input field.

    Raises:
        ValueError: unknown template or input mode.
    """
    if input_mode not in INPUT_MODES:
        raise ValueError(f"unknown input mode {input_mode!r}; expected one of {INPUT_MODES}")
    if input_mode == "merge":
        instruction, input = merge_input(instruction, input), ""
    question = answer(template, instruction + input)
    target = answer(template, output)
    return {
        "a_given_q": Pair(prompt(template, instruction, input, tokenizer), target),
        "a": Pair("", target),
        "q_given_a": Pair(prompt(template, reverse_prompt(output), "", tokenizer), question),
        "q": Pair("", question),
    }
