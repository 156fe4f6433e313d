"""``export`` errors and the card without a license (the full round trip is in test_report_browse.py)."""

from __future__ import annotations

import pytest

from reflection_tuning.errors import UserError
from reflection_tuning.io import write_jsonl
from reflection_tuning.stages import export
from reflection_tuning.stages.select import Config as SelectConfig


def _prov():
    return export.Provenance(dataset="alpaca", source="local.json", student="models/s", select=SelectConfig(),
                             commit="abc", params_hash="0123456789ab")


def test_missing_selection_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="selected.jsonl is missing"):
        export.run(export.Config(), export.Inputs(tmp_path, tmp_path / "select.json"),
                   export.Outputs(tmp_path / "export"), _prov())


def test_empty_selection_is_a_user_error(tmp_path):
    write_jsonl(tmp_path / "selected.jsonl", [])
    with pytest.raises(UserError, match="has no rows"):
        export.run(export.Config(), export.Inputs(tmp_path, tmp_path / "select.json"),
                   export.Outputs(tmp_path / "export"), _prov())


def test_unset_license_is_other_and_said_so(tmp_path, alpaca_rows):
    write_jsonl(tmp_path / "original.jsonl", alpaca_rows[:3])
    write_jsonl(tmp_path / "selected.jsonl", [{**r, "variant": "original", "ifd": None, "rifd": None}
                                              for r in alpaca_rows[:2]])
    out = tmp_path / "export"
    (out / "stale").mkdir(parents=True)
    counts = export.run(export.Config(all_variants=False), export.Inputs(tmp_path, tmp_path / "select.json"),
                        export.Outputs(out), _prov())
    assert counts == {"selected_rows": 2, "variant_rows": 0}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", export.SELECTED]
    text = (out / "README.md").read_text()
    assert "license: other" in text and "Set `export.license`" in text and "all_variants" not in text


def test_params_hash_is_canonical():
    assert export.params_hash({"a": 1, "b": {"c": 2}}) == export.params_hash({"b": {"c": 2}, "a": 1})
    assert export.params_hash({"a": 1}) != export.params_hash({"a": 2})
