"""The parameter reference comes from params.yaml's comments: each key is described once,
docs/parameters.md is regenerated from them (and cannot drift), and --help shows them."""

from __future__ import annotations

import argparse
import contextlib
import io
from dataclasses import dataclass

import pytest
import yaml
from stage_help import help_text

from reflection_tuning import paramdoc
from reflection_tuning.options import add_config_options

TEXT = """\
# file header, not a section

# The teacher: any endpoint.
# Second line of the section.
teacher:
  model: some/model
  base_url: embedded                # or https://…/v1
  reask_feedback: true              # a re-ask carries the failed reply (the only
                                    # re-ask that changes a greedy reply)
  price: {input: 0.15, output: 0.6} # USD per 1M tokens
  tasks: [a, b]
  quoted: "a # not a comment"       # the comment
datasets:
  alpaca:
    # where the rows come from:
    # a hub id or a file
    source: tatsu-lab/alpaca
    limit: 16                       # rows sampled
  # wizardlm:
  #   source: x

# Top-level value.
preset: null
"""


def keys(text=TEXT):
    return {k.path: k for s in paramdoc.parse(text) for k in s.keys}


def test_comments_become_descriptions():
    got = keys()
    assert got["teacher.model"].doc == ""
    assert got["teacher.base_url"].doc == "or https://…/v1"
    assert (
        got["teacher.reask_feedback"].doc
        == "a re-ask carries the failed reply (the only re-ask that changes a greedy reply)"
    )
    assert got["teacher.quoted"].doc == "the comment"
    assert got["teacher.quoted"].source == '"a # not a comment"'
    assert got["datasets.alpaca.source"].doc == "where the rows come from: a hub id or a file"
    assert got["datasets.alpaca.limit"].doc == "rows sampled"
    assert got["preset"].doc == "Top-level value."


def test_flow_values_are_values_and_every_key_is_found_once():
    got = keys()
    assert got["teacher.price"].source == "{input: 0.15, output: 0.6}"
    assert got["teacher.tasks"].source == "[a, b]"
    assert list(got) == ["teacher.model", "teacher.base_url", "teacher.reask_feedback", "teacher.price",
                         "teacher.tasks", "teacher.quoted", "datasets.alpaca.source", "datasets.alpaca.limit", "preset"]


def test_a_section_comment_is_the_block_right_above_it():
    sections = {s.name: s.doc for s in paramdoc.parse(TEXT)}
    assert sections == {"teacher": "The teacher: any endpoint. Second line of the section.",
                        "datasets": "", "preset": "Top-level value."}


def leaves(mapping, prefix=""):
    """Dotted paths of the leaves (the shipped params hold no mapping as a value)."""
    for k, v in mapping.items():
        if isinstance(v, dict) and v:
            yield from leaves(v, f"{prefix}{k}.")
        else:
            yield prefix + k


def test_parse_finds_every_key_of_the_shipped_params():
    text = paramdoc.PARAMS.read_text(encoding="utf-8")
    assert list(keys(text)) == list(leaves(yaml.safe_load(text)))


def test_describe_reads_the_shipped_comments():
    assert "completion tokens" in paramdoc.describe("teacher", "max_tokens")
    assert paramdoc.describe("datasets.{dataset}", "limit") == paramdoc.describe("datasets.alpaca", "limit") != ""
    assert paramdoc.describe("", "preset").startswith("Pipeline preset")
    assert paramdoc.describe("teacher", "no_such_key") == ""
    assert paramdoc.describe("teacher", "model", path=paramdoc.REPO / "no-such-params.yaml") == ""


def test_help_shows_what_a_key_means(tmp_path):
    @dataclass(frozen=True)
    class Cfg:
        limit: int | None
        seed: int

    params = tmp_path / "params.yaml"
    params.write_text("datasets:\n  alpaca:\n    limit: 16   # rows sampled (100% = all)\n    seed: 0\n")
    parser = argparse.ArgumentParser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paramdoc, "PARAMS", params)
        add_config_options(parser, Cfg, section="datasets.{dataset}")
    text = parser.format_help()
    assert "rows sampled (100% = all) [int | None]" in " ".join(text.split())
    assert "--seed SEED int" in " ".join(text.split())


def test_a_stage_help_describes_its_keys():
    text = " ".join(help_text("finetune").split())
    assert paramdoc.describe("finetune", "lora_r") in text


def test_render_fills_blocks_and_names_what_is_missing():
    sections = paramdoc.parse(TEXT)
    doc = "\n".join(f"## {s.name}\n<!-- paramdoc {s.name} -->\nold\n<!-- /paramdoc -->\nprose" for s in sections)
    out = paramdoc.render(doc, sections)
    assert "- `teacher.base_url` = `embedded`: or https://…/v1" in out
    assert "- `teacher.model` = `some/model`\n" in out
    assert "The teacher: any endpoint. Second line of the section.\n\n- `teacher.model`" in out
    assert "old" not in out and out.count("prose") == 3
    assert paramdoc.render(out, sections) == out
    with pytest.raises(ValueError, match=r"no block for params section\(s\) \['preset'\].*make docs"):
        paramdoc.render(doc.split("## preset")[0], sections)
    with pytest.raises(ValueError, match=r"no params section \['gone'\]"):
        paramdoc.render(doc + "\n<!-- paramdoc gone -->\n<!-- /paramdoc -->", sections)


def test_docs_parameters_md_is_generated_from_params_yaml():
    """Run `make docs` when this fails: docs/parameters.md's key lists come from params.yaml."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = paramdoc.main(["--check"])
    assert code == 0, err.getvalue()


def test_every_params_key_appears_in_docs_parameters_md():
    doc = paramdoc.DOC.read_text(encoding="utf-8")
    missing = [k for k in keys(paramdoc.PARAMS.read_text(encoding="utf-8")) if f"`{k}`" not in doc]
    assert not missing, f"docs/parameters.md does not describe {missing}: run {paramdoc.REGENERATE}"


def test_check_fails_on_a_stale_doc_and_the_rewrite_mends_it(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(TEXT)
    doc = tmp_path / "parameters.md"
    doc.write_text("".join(f"<!-- paramdoc {s.name} -->\n<!-- /paramdoc -->\n" for s in paramdoc.parse(TEXT)))
    assert paramdoc.main(["--params", str(params), "--doc", str(doc), "--check"]) == 1
    assert "make docs" in capsys.readouterr().err
    assert paramdoc.main(["--params", str(params), "--doc", str(doc)]) == 0
    assert paramdoc.main(["--params", str(params), "--doc", str(doc), "--check"]) == 0
