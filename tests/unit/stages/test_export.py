"""``export`` errors and the card without a license (the full round trip is in test_report_browse.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped import PARAMS, params_config, shipped_params

from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_jsonl, write_metrics
from reflection_tuning.select import Config as SelectConfig
from reflection_tuning.stages import export


def _inputs(d: Path) -> export.Inputs:
    (d / "select.json").write_text("{}")
    return export.Inputs(d / "selected.jsonl", d, d / "select.json")


def _prov():
    return export.Provenance(dataset="alpaca", source="local.json", student="models/s",
                             select=params_config(SelectConfig, "select"),
                             commit="abc", params_hash="0123456789ab")


def test_empty_selection_is_a_user_error(tmp_path):
    write_jsonl(tmp_path / "selected.jsonl", [])
    with pytest.raises(UserError, match="has no rows"):
        export.run(params_config(export.Config, "export"), _inputs(tmp_path), export.Outputs(tmp_path / "export"),
                   _prov())


def test_unset_license_is_other_and_said_so(tmp_path, alpaca_rows):
    write_jsonl(tmp_path / "original.jsonl", alpaca_rows[:3])
    write_jsonl(tmp_path / "selected.jsonl", [{**r, "variant": "original", "ifd": None, "rifd": None}
                                              for r in alpaca_rows[:2]])
    out = tmp_path / "export"
    (out / "stale").mkdir(parents=True)
    cfg = params_config(export.Config, "export", all_variants=False)
    counts = export.run(cfg, _inputs(tmp_path),
                        export.Outputs(out), _prov())
    assert counts == {"selected_rows": 2, "variant_rows": 0}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", export.SELECTED]
    text = (out / "README.md").read_text()
    assert "license: other" in text and "Set `export.license`" in text and "all_variants" not in text


def test_params_hash_is_canonical():
    assert export.params_hash({"a": 1, "b": {"c": 2}}) == export.params_hash({"b": {"c": 2}, "a": 1})
    assert export.params_hash({"a": 1}) != export.params_hash({"a": 2})


@pytest.mark.parametrize("dataset", [["--dataset=alpaca"], ["--dataset", "alpaca"]])
def test_main_takes_the_source_from_the_dataset_entry(dataset, tmp_path, alpaca_rows, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "data" / "alpaca"
    write_jsonl(d / "original.jsonl", alpaca_rows[:2])
    write_jsonl(d / "selected.jsonl",
                [{**r, "variant": "original", "ifd": None, "rifd": None} for r in alpaca_rows[:2]])
    with pytest.raises(UserError, match=r"missing input metrics/alpaca/select.json \(--select-metrics\)"):
        export.main([*dataset, "--params", str(PARAMS)])
    write_metrics(tmp_path / "metrics" / "alpaca" / "select.json", {"kept": 2})
    assert export.main([*dataset, "--params", str(PARAMS), "--license", "cc-by-nc-4.0"]) == 0
    text = (d / "export" / "README.md").read_text()
    assert shipped_params()["datasets"]["alpaca"]["source"] in text and "license: cc-by-nc-4.0" in text
    assert export.main([*dataset, "--params", str(PARAMS), "--fetch-source", "elsewhere.json",
                        "--output", "out"]) == 0
    assert "elsewhere.json" in (tmp_path / "out" / "README.md").read_text()
    with pytest.raises(SystemExit):
        export.main(["--params", str(PARAMS)])  # the card needs a dataset
