"""Build ``tests/assets/tiny_tokenizer/``: a small byte-level BPE tokenizer with a ChatML chat template.

    python tests/assets/build_tiny_tokenizer.py [path/to/cherry_alpaca_5_percent.json]

It is trained on the first rows of the real Cherry-Alpaca file in ``../shared/data`` and
committed (a few KB), as torchtune commits its tiny test tokenizers: the unit tests and the
``tiny_model`` fixture load it with ``AutoTokenizer`` and need no converted model. It is
shaped like SmolLM2's tokenizer, which the pipeline runs with: byte-level BPE (any text
encodes, no unknown token), no space added in front, offsets that keep the leading space,
no BOS added, ``<|im_end|>`` as EOS and pad, and a ChatML chat template. Rerun this script
only to change the tokenizer; the tests that depend on its token counts say so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
OUT = HERE / "tiny_tokenizer"
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"
ROWS = 300  # real rows to learn merges from
VOCAB_SIZE = 512  # 256 bytes + 3 special tokens + 253 merges: a few KB on disk
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML, the format of the student's own template; no default system turn.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


def texts(source: Path) -> list[str]:
    """The instruction, input and output of the first ``ROWS`` rows, one text each."""
    rows = json.loads(source.read_text(encoding="utf-8"))[:ROWS]
    return [r[k] for r in rows for k in ("instruction", "input", "output") if r.get(k)]


def build(source: Path, out: Path = OUT) -> PreTrainedTokenizerFast:
    """Train the tokenizer on ``source`` and save it under ``out`` (tokenizer.json, config, template)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts(source), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>", model_max_length=4096)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


if __name__ == "__main__":
    tokenizer = build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{OUT}: {len(tokenizer)} tokens, {size / 1024:.1f} KiB")
