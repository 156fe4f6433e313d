"""finetune on real Alpaca rows with the tiny model: loss on the response only, outputs written,
the training curves logged by DVCLive."""

from __future__ import annotations

import csv
import json
import math

import pytest
from shipped import REPO, params_config, write_params

from reflection_tuning import templates
from reflection_tuning.infra.io import write_jsonl
from reflection_tuning.sft import Config, build_trainer, training_examples
from reflection_tuning.stages.finetune import Inputs, Outputs, main, run
from reflection_tuning.student import StudentConfig


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_model, alpaca_rows):
    """`reflection-tuning finetune --dataset alpaca` in a fresh directory: 8 rows, 2 steps."""
    root = tmp_path_factory.mktemp("finetune")
    write_jsonl(root / "data" / "alpaca" / "selected.jsonl", alpaca_rows[:8])
    write_params(root / "params.yaml", student={"model": str(tiny_model)},
                 finetune={"template": "vicuna", "batch_size": 4, "max_length": 64, "learning_rate": 1.0e-3,
                           "device": "cpu"})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the default paths are relative to the repository root
        assert main(["--dataset=alpaca", "--max-length", "256"]) == 0
    return root


def test_trains_and_writes_metrics(cli_run):
    m = json.loads((cli_run / "metrics/alpaca/finetune.json").read_text())
    assert m["train_rows"] == m["selected_rows"] == m["rows_in"] == 8 and m["rows_too_long"] == 0
    assert m["steps"] == 2  # 8 rows / batch 4, 1 epoch
    assert math.isfinite(m["train_loss"]) and m["train_loss"] > 0
    assert 0 < m["completion_tokens"] < m["tokens"]
    assert m["seconds"] > 0


def test_dvclive_logs_the_training_curves(cli_run):
    """transformers' DVCLiveCallback: one row per optimizer step in plots/metrics/loss.tsv (DVCLive's
    step from 0), the last values in metrics.json; the files dvc.yaml declares, and no dvc.yaml."""
    live = cli_run / "metrics/alpaca/finetune_dvclive"
    with open(live / "plots/metrics/loss.tsv", newline="") as f:
        curve = list(csv.DictReader(f, delimiter="\t"))
    assert [int(r["step"]) for r in curve] == [0, 1]  # 2 optimizer steps
    assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in curve)
    assert (live / "plots/metrics/learning_rate.tsv").is_file()
    summary = json.loads((live / "metrics.json").read_text())
    assert summary["loss"] == float(curve[-1]["loss"]) and summary["step"] == 2
    # the mean over the run, in its own file: not a point of the curve
    finetune = json.loads((cli_run / "metrics/alpaca/finetune.json").read_text())
    assert summary["train"]["loss"] == pytest.approx(finetune["train_loss"])
    assert not (live / "dvc.yaml").exists() and not (cli_run / "dvc.yaml").exists()
    assert not (cli_run / "dvclive").exists()  # not report_to's shared ./dvclive


def test_model_saved_and_loadable(cli_run, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = cli_run / "models/alpaca/student-sft"
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert tokenizer.eos_token == AutoTokenizer.from_pretrained(tiny_model).eos_token
    name, weight = next(iter(model.state_dict().items()))
    assert not torch.equal(weight, base.state_dict()[name])  # it did train
    ids = tokenizer("Hello", return_tensors="pt").input_ids
    assert torch.isfinite(model(ids).logits).all()


def test_labels_mask_the_prompt(tiny_model, alpaca_rows, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    row = next(r for r in alpaca_rows if r["input"] and r["output"][:1].isalpha())
    examples = training_examples([row], "vicuna", tokenizer)
    assert examples[0]["prompt"] == templates.prompt("vicuna", row["instruction"], row["input"])
    assert examples[0]["completion"] == " " + row["output"] + tokenizer.eos_token  # FastChat: "ASSISTANT: " + answer
    cfg = params_config(Config, "finetune", max_length=1024, device="cpu")
    trainer = build_trainer(cfg, model, tokenizer, examples, tmp_path / "out")
    batch = trainer.data_collator([trainer.train_dataset[0]])
    input_ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    prompt_ids = tokenizer(examples[0]["prompt"])["input_ids"]
    n = len(prompt_ids)
    assert input_ids[:n] == prompt_ids
    assert labels[:n] == [-100] * n  # no loss on the prompt
    assert labels[n:] == input_ids[n:]  # loss on every response token ...
    assert labels[-1] == tokenizer.eos_token_id  # ... including the EOS that ends it
    assert tokenizer.decode(input_ids[n:-1]) == " " + row["output"]


def test_zero_rows_saves_the_unchanged_student(tiny_model, tmp_path, caplog):
    (tmp_path / "selected.jsonl").write_text("")
    out = Outputs(model_dir=tmp_path / "sft", metrics=tmp_path / "m.json", loss_plot=tmp_path / "live")
    m = run(params_config(Config, "finetune", device="cpu"), StudentConfig(model=str(tiny_model)),
            Inputs(rows=tmp_path / "selected.jsonl"), out)
    assert m["train_rows"] == 0 and m["steps"] == 0 and m["train_loss"] is None
    assert "no rows" in caplog.text
    assert json.loads(out.metrics.read_text())["train_loss"] is None
    assert (out.model_dir / "config.json").exists() and (out.model_dir / "tokenizer.json").exists()
    assert json.loads((out.loss_plot / "metrics.json").read_text()) == {}  # DVCLive's files, no curve
    assert list((out.loss_plot / "plots/metrics").iterdir()) == []


def test_rows_cut_off_by_max_length_are_not_trained(tiny_model, alpaca_rows, tmp_path):
    write_jsonl(tmp_path / "selected.jsonl", alpaca_rows[:2])
    out = Outputs(model_dir=tmp_path / "sft", metrics=tmp_path / "m.json", loss_plot=tmp_path / "live")
    # 16 tokens do not even hold the Vicuna system prompt: no response token is left
    m = run(params_config(Config, "finetune", max_length=16, device="cpu"), StudentConfig(model=str(tiny_model)),
            Inputs(rows=tmp_path / "selected.jsonl"), out)
    assert m["selected_rows"] == 2 and m["train_rows"] == 0 and m["train_loss"] is None
    assert m["rows_in"] == m["train_rows"] + m["rows_too_long"]  # counts in = counts out
    assert (out.model_dir / "model.safetensors").exists()


def test_bad_rows_and_missing_paths(tiny_model, tmp_path):
    from reflection_tuning.infra.errors import UserError

    with pytest.raises(UserError, match="abc"):
        training_examples([{"id": "abc", "instruction": None, "output": None}], "vicuna", None)
    with pytest.raises(SystemExit):
        main(["--params", str(REPO / "params.yaml")])  # no --dataset and no --input
    with pytest.raises(UserError, match="params file .*none.yaml not found"):
        main(["--params", str(tmp_path / "none.yaml"), "--input", "x.jsonl", "--output", "m"])
    with pytest.raises(UserError, match=r"finetune: missing input .*none.jsonl \(--input\)"):
        main(["--params", str(REPO / "params.yaml"), "--input", str(tmp_path / "none.jsonl"),
              "--output", str(tmp_path / "m")])


def test_packed_batch_loss_equals_the_rows_losses(tiny_model, alpaca_rows, tmp_path):
    """Packing is padding-free: one flattened sequence, attention kept within each row by its
    position_ids (SDPA here). Its loss must equal the token-mean loss of the rows run one by one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    examples = training_examples(alpaca_rows[:6], "vicuna", tokenizer)
    cfg = params_config(
        Config, "finetune", max_length=1024, batch_size=8, packing=True, device="cpu"
    )  # the tiny tokenizer: ~2.5x SmolLM2's tokens
    trainer = build_trainer(cfg, model, tokenizer, examples, tmp_path / "out")
    packed = trainer.train_dataset
    assert len(packed) < len(examples) and sum(len(s) for s in packed["seq_lengths"]) == len(examples)
    batch = trainer.data_collator([packed[i] for i in range(len(packed))])
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1  # flattened, no pad token
    with torch.no_grad():
        packed_loss = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                            labels=batch["labels"]).loss
    nll, count = 0.0, 0
    for e in examples:
        prompt = tokenizer(e["prompt"])["input_ids"]
        ids = tokenizer(e["prompt"] + e["completion"])["input_ids"][:1024]
        labels = torch.tensor([[-100] * len(prompt) + ids[len(prompt):]])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=labels).loss
        n = len(ids) - len(prompt)  # completion tokens, each predicted from the tokens before it
        nll, count = nll + loss.item() * n, count + n
    assert int((batch["labels"] != -100).sum()) == count  # loss on the completions only
    assert packed_loss.item() == pytest.approx(nll / count, rel=1e-4)


def test_lora_checkpointing_packing_and_global_batch(tiny_model, alpaca_rows, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    write_jsonl(tmp_path / "selected.jsonl", alpaca_rows[:4])
    out = Outputs(model_dir=tmp_path / "sft", metrics=tmp_path / "m.json", loss_plot=tmp_path / "live")
    cfg = params_config(Config, "finetune", max_length=256, batch_size=1, global_batch_size=2, packing=True,
                        gradient_checkpointing=True, lora_r=4, lora_alpha=8, learning_rate=1e-2, device="cpu")
    m = run(cfg, StudentConfig(model=str(tiny_model)), Inputs(rows=tmp_path / "selected.jsonl"), out)
    assert m["train_rows"] == 4 and m["gradient_accumulation_steps"] == 2 and m["world_size"] == 1
    assert m["steps"] == math.ceil(m["sequences"] / 2) and math.isfinite(m["train_loss"])
    assert not (out.model_dir / "adapter_config.json").exists()  # merged: a plain model directory
    model = AutoModelForCausalLM.from_pretrained(out.model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    state = model.state_dict()
    assert set(state) == set(base)
    changed = [k for k in state if not torch.equal(state[k], base[k])]
    assert changed and all("proj" in k for k in changed)  # only the LoRA-wrapped linear layers moved


def test_baseline_arm_trains_on_the_original_rows(tmp_path, tiny_model, alpaca_rows, cli_run, monkeypatch):
    """`reflection-tuning finetune_baseline --dataset alpaca`: the same run on data/K/original.jsonl,
    written to the baseline's own paths, with the finetune metric keys."""
    from reflection_tuning.stages import finetune_baseline

    write_jsonl(tmp_path / "data" / "alpaca" / "original.jsonl", alpaca_rows[:4])
    write_jsonl(tmp_path / "data" / "alpaca" / "selected.jsonl", [])  # never read by the baseline
    (tmp_path / "params.yaml").write_text((cli_run / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert finetune_baseline.main(["--dataset", "alpaca", "--max-length", "256"]) == 0
    m = json.loads((tmp_path / "metrics/alpaca/finetune_baseline.json").read_text())
    assert m["rows_in"] == m["train_rows"] == 4 and m["rows_too_long"] == 0 and m["steps"] == 1
    assert set(m) == set(json.loads((cli_run / "metrics/alpaca/finetune.json").read_text()))
    assert (tmp_path / "metrics/alpaca/finetune_baseline_dvclive/plots/metrics/loss.tsv").is_file()
    assert (tmp_path / "models/alpaca/baseline-sft/config.json").is_file()
    assert not (tmp_path / "models/alpaca/student-sft").exists()
