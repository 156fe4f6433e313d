"""The parameter reference comes from params.yaml's comments: each key is described once,
docs/parameters.md and the packaged paramdoc.json are regenerated from them (and cannot
drift), and every command's --help shows them, whatever the user's params.yaml holds."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
from dataclasses import dataclass

import pytest
import yaml
from stage_help import ALL_COMMANDS, command_parser, command_stage, help_text

from reflection_tuning.infra import paramdoc
from reflection_tuning.infra.config import add_config_options

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


def leaves(mapping, flow, prefix=""):
    """Dotted paths of the leaves; a mapping written in flow style (``{a: 1}``, in ``flow``) is a value."""
    for k, v in mapping.items():
        if isinstance(v, dict) and v and prefix + k not in flow:
            yield from leaves(v, flow, f"{prefix}{k}.")
        else:
            yield prefix + k


def test_parse_finds_every_key_of_the_shipped_params():
    text = paramdoc.PARAMS.read_text(encoding="utf-8")
    flow = {k for k, v in keys(text).items() if v.source.startswith("{")}
    assert list(keys(text)) == list(leaves(yaml.safe_load(text), flow))


def test_describe_reads_the_packaged_descriptions():
    assert "completion tokens" in paramdoc.describe("teacher", "max_tokens")
    assert paramdoc.describe("datasets.{dataset}", "limit") == paramdoc.describe("datasets.alpaca", "limit") != ""
    assert paramdoc.describe("", "preset").startswith("Pipeline preset")
    assert paramdoc.describe("teacher", "no_such_key") == ""
    assert paramdoc.section_doc("teacher").startswith("The teacher LLM")
    assert paramdoc.section_doc("datasets.{dataset}").startswith("Instruction datasets")
    assert paramdoc.section_doc("no_such_section") == ""


def test_a_missing_packaged_file_leaves_the_help_by_type(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(paramdoc, "PACKAGED", tmp_path / "gone.json")
    assert paramdoc.describe("teacher", "model") == "" and paramdoc.section_doc("teacher") == ""
    assert "reinstall" in caplog.text


def test_the_json_round_trips_and_refuses_another_shape():
    sections = paramdoc.parse(TEXT)
    assert paramdoc.from_json(paramdoc.to_json(sections)) == sections
    with pytest.raises(ValueError, match="not a paramdoc file"):
        paramdoc.from_json('{"sections": [{"name": "x"}]}')


def test_help_shows_what_a_key_means(tmp_path, monkeypatch):
    @dataclass(frozen=True)
    class Cfg:
        limit: int | None
        seed: int

    packaged = tmp_path / "paramdoc.json"
    text = "# The datasets.\ndatasets:\n  alpaca:\n    limit: 16   # rows sampled (100% = all)\n    seed: 0\n"
    packaged.write_text(paramdoc.to_json(paramdoc.parse(text)))
    monkeypatch.setattr(paramdoc, "PACKAGED", packaged)
    parser = argparse.ArgumentParser()
    add_config_options(parser, Cfg, section="datasets.{dataset}")
    add_config_options(parser, Cfg, prefix="fetch", section="datasets.{dataset}")
    text = " ".join(parser.format_help().split())
    assert "datasets.<dataset>: The datasets. Each option overrides the key in params.yaml." in text
    assert "datasets.<dataset> (as --fetch-<key>): The datasets." in text
    assert "rows sampled (100% = all) [int | None]" in text
    assert "--seed SEED int" in text  # no comment: the type alone (the shipped keys all have one)


def test_a_stage_help_describes_its_keys():
    text = " ".join(help_text("finetune").split())
    assert paramdoc.describe("finetune", "lora_r") in text


def test_every_key_and_section_of_params_yaml_has_a_description():
    """Write a comment for the key in params.yaml (on its line), then run `make docs`."""
    sections = paramdoc.parse(paramdoc.PARAMS.read_text(encoding="utf-8"))
    assert not [k.path for s in sections for k in s.keys if not k.doc]
    assert not [s.name for s in sections if not s.doc]


def test_the_packaged_descriptions_are_params_yaml_comments():
    """Run `make docs` when this fails: paramdoc.json is generated from params.yaml's comments."""
    packaged = paramdoc.from_json(paramdoc.PACKAGED.read_text(encoding="utf-8"))
    assert packaged == paramdoc.parse(paramdoc.PARAMS.read_text(encoding="utf-8"))


def test_the_package_ships_the_descriptions():
    pyproject = (paramdoc.REPO / "pyproject.toml").read_text(encoding="utf-8")
    data = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert f'"{paramdoc.PACKAGED.name}"' in data
    assert paramdoc.PACKAGED.parent.name == "reflection_tuning"


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
    packaged = tmp_path / "paramdoc.json"
    argv = ["--params", str(params), "--doc", str(doc), "--packaged", str(packaged)]
    assert paramdoc.main([*argv, "--check"]) == 1
    err = capsys.readouterr().err
    assert "parameters.md is out of date" in err and "paramdoc.json is out of date" in err and "make docs" in err
    assert not packaged.exists()
    assert paramdoc.main(argv) == 0
    assert paramdoc.main([*argv, "--check"]) == 0
    assert paramdoc.from_json(packaged.read_text()) == paramdoc.parse(TEXT)
    params.write_text(TEXT.replace("# rows sampled", "# rows drawn"))  # a comment edited, not regenerated
    assert paramdoc.main([*argv, "--check"]) == 1
    assert "paramdoc.json is out of date" in capsys.readouterr().err


# --- every command's --help against docs/parameters.md -----------------------------------

# A help line that gives an option's type and nothing else (the before-stop hook's pattern).
TYPE_ONLY = re.compile(r"(^| {2,})(int|str|float|bool|dict\[[^]]*\]|tuple\[[^]]*\])( \| [a-z]+(\[[^]]*\])?)*"
                       r"( \| None)?$", re.MULTILINE)


def doc_descriptions() -> dict[str, str]:
    """Each key's description as docs/parameters.md's generated lists give it."""
    doc = paramdoc.DOC.read_text(encoding="utf-8")
    return dict(re.findall(r"^- `([^`]+)` = `[^`]*`: (.*)$", doc, re.MULTILINE))


def doc_for(docs: dict[str, str], section: str, key: str) -> str | None:
    pattern = re.escape(f"{section}.{key}").replace(re.escape("{dataset}"), r"[^.]+") + "$"
    return next((d for path, d in docs.items() if re.match(pattern, path)), None)


def option_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    return {a.option_strings[-1]: a.help for a in parser._actions if a.option_strings}


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_every_option_of_every_command_says_what_it_means(command):
    """Each params option's help is its key's description in docs/parameters.md, then its
    choices or type in brackets; every other option has a help of its own; each section's
    options are grouped under the section's name."""
    parser, stage = command_parser(command), command_stage(command)
    helps = option_help(parser)
    assert not [flag for flag, text in helps.items() if not text or text == argparse.SUPPRESS]
    titles = {g.title for g in parser._action_groups}
    docs = doc_descriptions()
    for section in stage.sections if stage else ():
        title = section.name.replace("{dataset}", "<dataset>")
        assert (f"{title} (as --{section.prefix}-<key>)" if section.prefix else title) in titles
        for f in dataclasses.fields(section.cls):
            flag = "--" + (section.prefix + "-" if section.prefix else "") + f.name.replace("_", "-")
            want = doc_for(docs, section.name, f.name)
            assert want, f"docs/parameters.md lists no {section.name}.{f.name}: add it to params.yaml, run make docs"
            text = helps[flag].replace("%%", "%")
            assert text.startswith(want + " [") and text.endswith("]"), (flag, text, want)


@pytest.mark.parametrize("columns", ["80", "120"])
def test_help_describes_every_option_with_params_yaml_stripped_of_comments(tmp_path, monkeypatch, columns):
    """A params.yaml rewritten by a YAML tool (no comments), or none at all beside the package,
    changes nothing: the descriptions ship with the package. No line is a bare type."""
    stripped = tmp_path / "params.yaml"
    stripped.write_text(yaml.safe_dump(yaml.safe_load(paramdoc.PARAMS.read_text(encoding="utf-8"))))
    assert "#" not in stripped.read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(paramdoc, "PARAMS", stripped)
    monkeypatch.setenv("COLUMNS", columns)
    docs = doc_descriptions()
    for command in ALL_COMMANDS:
        text = help_text(command)
        assert not TYPE_ONLY.findall(text), (command, [m.group(0) for m in TYPE_ONLY.finditer(text)])
        stage = command_stage(command)
        flat = "".join(text.split())  # argparse wraps lines at spaces and after hyphens
        for section in stage.sections if stage else ():
            for f in dataclasses.fields(section.cls):
                assert "".join(doc_for(docs, section.name, f.name).split()) in flat, (command, f.name)


def test_the_type_only_pattern_catches_what_it_should():
    assert TYPE_ONLY.search("  --temperature TEMPERATURE\n                        float\n")
    assert TYPE_ONLY.search("  --seed SEED           int | None")
    assert TYPE_ONLY.search("  --price PRICE         dict[str, float] | None")
    assert not TYPE_ONLY.search("  --seed SEED           sampling seed [int | None]")
    assert not TYPE_ONLY.search("                        None]")
