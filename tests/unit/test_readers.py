"""readers: every container and encoding a real file comes in, built from real Alpaca rows."""

from __future__ import annotations

import codecs
import csv
import gzip
import json
from pathlib import Path

import pytest

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import SourceError
from reflection_tuning.readers import FORMATS, Config, read_records, to_fields


def _values(source: Path | str) -> list:
    return [r.value for r in read_records(str(source)) if r.error is None]


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


@pytest.fixture
def recs(alpaca_records) -> list[dict]:
    return alpaca_records[:6]


def test_bom_and_crlf_in_lines_and_arrays(recs, tmp_path):
    lines = codecs.BOM_UTF8 + _jsonl(recs).replace(b"\n", b"\r\n")
    (tmp_path / "a.jsonl").write_bytes(lines)
    array = codecs.BOM_UTF8 + json.dumps(recs, indent=2, ensure_ascii=False).replace("\n", "\r\n").encode()
    (tmp_path / "b.json").write_bytes(array)
    assert _values(tmp_path / "a.jsonl") == recs
    assert _values(tmp_path / "b.json") == recs


def test_content_decides_json_or_lines_not_the_extension(recs, tmp_path):
    (tmp_path / "lines.json").write_bytes(_jsonl(recs))
    (tmp_path / "array.jsonl").write_text(json.dumps(recs))
    (tmp_path / "noext").write_bytes(_jsonl(recs))
    for name in ("lines.json", "array.jsonl", "noext"):
        assert _values(tmp_path / name) == recs, name


def test_array_records_carry_their_start_line(recs, tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(recs[:2], indent=1))
    lines = [r.line for r in read_records(str(path))]
    assert lines == [2, 2 + json.dumps(recs[0], indent=1).count("\n") + 1]


def test_jsonl_whose_first_record_is_an_array_reads_as_lines(recs, tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"[1, 2]\n" + _jsonl(recs))
    got = list(read_records(str(path)))
    assert got[0].value == [1, 2] and [r.value for r in got[1:]] == recs


def test_broken_json_document_is_a_source_error(recs, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(recs, indent=2)[:-40])
    with pytest.raises(SourceError, match="not valid JSON"):
        list(read_records(str(path)))


def test_gzip_and_zstd_by_magic_bytes(recs, tmp_path):
    import zstandard

    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress(_jsonl(recs)))
    (tmp_path / "r.json.zst").write_bytes(zstandard.ZstdCompressor().compress(json.dumps(recs).encode()))
    (tmp_path / "misnamed.jsonl").write_bytes(gzip.compress(codecs.BOM_UTF8 + _jsonl(recs)))
    two_frames = b"".join(zstandard.ZstdCompressor().compress(_jsonl([r])) for r in recs)  # as zstd -c a b > c
    (tmp_path / "frames.jsonl.zst").write_bytes(two_frames)
    for name in ("r.jsonl.gz", "r.json.zst", "misnamed.jsonl", "frames.jsonl.zst"):
        assert _values(tmp_path / name) == recs, name


def test_truncated_compressed_file_is_a_source_error(recs, tmp_path):
    import zstandard

    data = _jsonl(recs)
    for name, packed in (
        ("cut.jsonl.gz", gzip.compress(data)),
        ("cut.jsonl.zst", zstandard.ZstdCompressor().compress(data)),
    ):
        (tmp_path / name).write_bytes(packed[: len(packed) // 2])
    for name in ("cut.jsonl.gz", "cut.jsonl.zst"):
        with pytest.raises(SourceError, match="cut.jsonl"):
            list(read_records(str(tmp_path / name)))


def test_csv_and_tsv_with_a_header(recs, tmp_path):
    fields = ["instruction", "input", "output"]
    for name, delimiter in (("r.csv", ","), ("r.tsv", "\t")):
        with open(tmp_path / name, "w", encoding="utf-8-sig", newline="") as f:  # a BOM, as Excel writes
            writer = csv.DictWriter(f, fieldnames=fields, delimiter=delimiter, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows({k: r[k] for k in fields} for r in recs)
        assert _values(tmp_path / name) == [{k: r[k] for k in fields} for r in recs], name
    (tmp_path / "r.csv.gz").write_bytes(gzip.compress((tmp_path / "r.csv").read_bytes()))
    assert len(_values(tmp_path / "r.csv.gz")) == len(recs)


def test_csv_long_cell_is_read(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("instruction,output\nq," + "x" * 300_000 + "\n")
    assert len(_values(path)[0]["output"]) == 300_000


def test_directory_of_shards_in_path_order(recs, tmp_path):
    shards = tmp_path / "shards"
    (shards / "b").mkdir(parents=True)
    (shards / "a-00.jsonl").write_bytes(_jsonl(recs[:2]))
    (shards / "b" / "c-01.json").write_text(json.dumps(recs[2:4]))
    (shards / "d-02.jsonl.gz").write_bytes(gzip.compress(_jsonl(recs[4:])))
    (shards / ".hidden.jsonl").write_text("garbage\n")
    got = list(read_records(str(shards)))
    assert [r.value for r in got] == recs
    assert [r.shard for r in got][:3] == ["a-00.jsonl", "a-00.jsonl", "b/c-01.json"]


def test_parquet_and_save_to_disk(recs, tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(recs)
    ds.to_parquet(str(tmp_path / "r.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "saved_dict"))
    assert _values(tmp_path / "r.parquet") == recs
    assert _values(tmp_path / "saved") == recs
    assert _values(tmp_path / "saved_dict") == recs  # the train split
    arrow = sorted((tmp_path / "saved").glob("*.arrow"))[0]
    assert _values(arrow) == recs


def test_invalid_utf8_rejects_its_record_with_the_byte_offset(recs, tmp_path):
    good = _jsonl(recs[:1])
    bad_line = b'{"instruction": "caf\xe9", "output": "x"}\n'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + good + bad_line + _jsonl(recs[1:2]))
    got = list(read_records(str(path)))
    assert [r.value for r in got if r.error is None] == recs[:2]
    offset = len(codecs.BOM_UTF8) + len(good) + bad_line.index(b"\xe9")
    assert got[1].error == f"invalid UTF-8 (byte 0xe9) at byte offset {offset}"
    array = tmp_path / "bad.json"
    body = b"[\n" + json.dumps(recs[0]).encode() + b",\n" + bad_line.strip() + b"\n]"
    array.write_bytes(body)
    got = list(read_records(str(array)))
    assert got[0].value == recs[0]
    where = body.index(b"\xe9")
    assert got[1].error == f"invalid UTF-8 at byte offset {where}"


def test_lone_surrogate_escape_is_rejected_not_crashed(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"instruction": "\\udc80", "output": "x"}\n')
    (record,) = read_records(str(path))
    assert "surrogate" in record.error


def test_missing_file_and_hub_ids(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        list(read_records(str(tmp_path / "nope.jsonl")))
    with pytest.raises(SourceError, match="not found"):
        list(read_records("data/rows.csv.gz"))
    with pytest.raises(SourceError, match="HF hub dataset 'teknium/OpenHermes-2.5'"):
        list(read_records("teknium/OpenHermes-2.5"))  # a dot in a hub id; HF_HUB_OFFLINE=1 in tests
    with pytest.raises(SourceError, match="HF hub dataset 'squad'"):
        list(read_records("squad"))  # a hub id without an owner
    with pytest.raises(SourceError, match="not found"):
        list(read_records("a/b/c"))


def test_formats_give_instruction_input_output(recs):
    rec = recs[0]
    assert to_fields(rec, "alpaca") == (rec["instruction"], rec["input"], rec["output"])
    assert to_fields({**rec, "input": None}, "wizardlm") == (rec["instruction"], "", rec["output"])
    turns = [{"from": "system", "value": "be brief"}, {"from": "human", "value": rec["instruction"]},
             {"from": "gpt", "value": rec["output"]}, {"from": "human", "value": "and then?"}]
    assert to_fields({"conversations": turns}, "sharegpt") == (rec["instruction"], "", rec["output"])
    for record, fmt, reason in (({"output": "a"}, "alpaca", "missing field 'instruction'"),
                                ({"instruction": " ", "output": "a"}, "wizardlm", "empty field 'instruction'"),
                                ({"conversations": turns[:2]}, "sharegpt", "no human turn followed"),
                                ([rec], "alpaca", "record is list"), (rec, "dolly", "unknown format")):
        with pytest.raises(ValueError, match=reason):
            to_fields(record, fmt)
    assert set(FORMATS) == {"alpaca", "wizardlm", "sharegpt"}
    with pytest.raises(ConfigError, match="limit"):
        Config(source="x.json", format="alpaca", limit=-1, seed=0, input="merge")
