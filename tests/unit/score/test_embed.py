"""Row embeddings from the scoring model (the tiny one): mean-pooled, independent of the batch a row
is in, stored sorted by (id, variant), and a clear error for a row without one."""

from __future__ import annotations

import numpy as np
import pytest

from reflection_tuning.infra.errors import UserError
from reflection_tuning.score.embed import embed_texts, load_embeddings, save_embeddings


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)


def test_a_row_embeds_alike_alone_and_padded_in_a_batch(tiny, alpaca_rows):
    model, tokenizer = tiny
    texts = [r["instruction"] + "\n" + r["output"] for r in alpaca_rows[:4]]
    tokenizer.padding_side = "left"
    batched = embed_texts(model, tokenizer, texts, max_length=128, batch_size=3, progress=False)
    assert tokenizer.padding_side == "left"  # restored
    alone = np.stack([embed_texts(model, tokenizer, [t], max_length=128, progress=False)[0] for t in texts])
    assert batched.shape == (4, model.config.hidden_size) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, alone, atol=1e-5)  # input order kept, pads masked
    assert len({v.tobytes() for v in batched}) == 4


def test_saved_sorted_and_loaded_by_key(tmp_path):
    keys = [("b", "original"), ("a", "response"), ("a", "original")]
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    save_embeddings(tmp_path / "e.npz", keys, vectors)
    with np.load(tmp_path / "e.npz", allow_pickle=False) as data:
        assert data["ids"].tolist() == ["a", "a", "b"] and data["variants"].tolist() == [
            "original",
            "response",
            "original",
        ]
    np.testing.assert_array_equal(load_embeddings(tmp_path / "e.npz", [("b", "original"), ("a", "response")]),
                                  vectors[[0, 1]])
    assert not list(tmp_path.glob("*.tmp.npz"))  # written atomically


def test_missing_embeddings_say_what_to_run(tmp_path):
    with pytest.raises(UserError, match="set score.embed: true and rerun score"):
        load_embeddings(tmp_path / "none.npz", [("a", "original")])
    save_embeddings(tmp_path / "e.npz", [("a", "original")], np.ones((1, 2), np.float32))
    with pytest.raises(UserError, match=r"1 selected rows have no embedding .* \('b', 'original'\)"):
        load_embeddings(tmp_path / "e.npz", [("a", "original"), ("b", "original")])
