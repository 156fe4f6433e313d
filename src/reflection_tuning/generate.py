"""The evaluation prompt sets, greedy batched answers from a model, and the AlpacaEval export.

The five test sets are those of Reflection-Tuning (arXiv 2310.11716, Sec. 4.2) and
Selective Reflection-Tuning (arXiv 2402.10110, Sec. 4.1): Vicuna, Koala, WizardLM, LIMA and
Self-Instruct, in the files and with the fields of Cherry LLM's ``evaluation/test_data``
(shipped in ``data/eval_prompts``; sources in NOTICE). A Self-Instruct task's input is its one instance's
input, as in the reference generation script.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptSet:
    """Where one test set lives and which fields hold the text and the source id."""

    file: str
    text_field: str
    id_field: str | None  # None: the line number is the id


PROMPT_SETS = {
    "vicuna": PromptSet("vicuna_test_set.jsonl", "text", "question_id"),
    "koala": PromptSet("koala_test_set.jsonl", "prompt", "id"),
    "wizardlm": PromptSet("wizardlm_test_set.jsonl", "Instruction", "idx"),
    "lima": PromptSet("lima_test_set.jsonl", "conversations", None),
    "sinstruct": PromptSet("sinstruct_test_set.jsonl", "instruction", "id"),
}


def question(instruction: str, input: str) -> str:
    """The user's whole request: the instruction, then the input (if any) after a blank line.

    This is what the judge and AlpacaEval see; it also keeps Self-Instruct tasks that share
    an instruction apart.
    """
    return f"{instruction}\n\n{input}" if input else instruction


def prompt_row(name: str, index: int, record: dict[str, Any]) -> dict[str, Any]:
    """One canonical evaluation prompt from line ``index`` (0-based) of set ``name``.

    Raises:
        ValueError: the record lacks its text field (the message says which).
    """
    spec = PROMPT_SETS[name]
    instruction = record.get(spec.text_field)
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"no text in field {spec.text_field!r}")
    input = ""
    if name == "sinstruct":
        instances = record.get("instances") or [{}]
        input = (instances[0] or {}).get("input") or ""
    return {
        "id": f"{name}-{index:04d}",
        "set": name,
        "source_id": record.get(spec.id_field) if spec.id_field else index,
        "instruction": instruction,
        "input": input,
        "prompt": question(instruction, input),
    }


def load_prompts(prompts_dir: str | Path, sets: Sequence[str], limit: int | None) -> tuple[list[dict], list[dict]]:
    """The first ``limit`` usable prompts of each set (file order), and the rejected lines.

    Returns:
        (prompt rows, rejects ``{set, line, reason}``).
    Raises:
        UserError: an unknown set name, or a set's file is missing.
    """
    rows, rejects = [], []
    for name in sets:
        if name not in PROMPT_SETS:
            raise UserError(f"unknown evaluation set {name!r}; expected some of {list(PROMPT_SETS)}")
        path = Path(prompts_dir) / PROMPT_SETS[name].file
        if not path.is_file():
            raise UserError(f"evaluation prompts {path} not found (generate.prompts_dir={str(prompts_dir)!r})")
        kept = 0
        for index, record in enumerate(read_jsonl(path)):
            if limit is not None and kept >= limit:
                break
            try:
                rows.append(prompt_row(name, index, record))
                kept += 1
            except ValueError as e:
                rejects.append({"set": name, "line": index + 1, "reason": str(e)})
    return rows, rejects


@dataclass(frozen=True)
class Answer:
    """One generated answer: its text, ``stop`` (an EOS token ended it) or ``length``
    (``max_new_tokens`` ended it), and the new tokens it took (EOS included)."""

    text: str
    finish: str
    tokens: int


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def generate_answers(model_dir: str | Path, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int,
                     device: str) -> list[Answer]:
    """Greedy answers of the model in ``model_dir`` to every prompt, in order.

    Prompts are batched by length with left padding (the answer tokens of a batch start at
    the same position); the answer is decoded without special tokens and stripped.

    Raises:
        UserError: ``model_dir`` is not a directory.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(model_dir).is_dir():
        raise UserError(f"model directory {model_dir} not found")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.float32 if device == "cpu" else "auto"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    eos = _eos_ids(model, tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[Answer | None] = [None] * len(prompts)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=f"generate {Path(model_dir).name}", unit="batch", mininterval=1.0):
        enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True).to(device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(eos))
        for i, ids in zip(batch, out[:, enc["input_ids"].shape[1]:].tolist(), strict=True):
            end = next((n for n, t in enumerate(ids) if t in eos), None)
            kept = ids if end is None else ids[:end]
            text = tokenizer.decode(kept, skip_special_tokens=True).strip()
            answers[i] = Answer(text, "length" if end is None else "stop", len(ids) if end is None else end + 1)
    del model
    return [a for a in answers if a is not None]


def alpaca_eval_records(rows: Sequence[dict[str, Any]], generator: str) -> list[dict[str, str]]:
    """AlpacaEval's outputs format: a list of ``{instruction, output, generator, dataset}``.

    ``instruction`` is the whole request (:func:`question`); AlpacaEval pairs the model's and
    the reference's outputs on it, so both files are written from the same prompts.
    """
    return [{"instruction": r["prompt"], "output": r["answer"], "generator": generator, "dataset": r["set"]}
            for r in sorted(rows, key=lambda r: r["id"])]
