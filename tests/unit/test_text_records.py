"""Records of text files, built from real Alpaca rows: JSON Lines and arrays (BOM, CRLF, U+2028),
CSV / TSV, and bytes that are not UTF-8 rejecting only their own record, with the byte offset."""

from __future__ import annotations

import csv
import io
import json

import pytest

from reflection_tuning.infra.errors import SourceError
from reflection_tuning.text_records import Record, read_csv, read_json_text


def records(data: bytes, name: str = "x.json") -> list[Record]:
    return list(read_json_text(io.BufferedReader(io.BytesIO(data)), name))


@pytest.fixture
def rows(alpaca_records):
    return [{k: r[k] for k in ("instruction", "input", "output")} for r in alpaca_records[:4]]


def test_json_lines_with_bom_crlf_and_a_line_separator_inside_a_string(rows):
    rows[1]["output"] += "\u2028second line"
    data = b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(r, ensure_ascii=False).encode() for r in rows) + b"\r\n\r\n"
    got = records(data, "x.jsonl")
    assert [r.value for r in got] == rows and [r.line for r in got] == [1, 2, 3, 4]


def test_a_json_array_keeps_the_line_of_each_element(rows):
    data = json.dumps(rows, indent=1, ensure_ascii=False).encode()
    got = records(data)
    assert [r.value for r in got] == rows and all(r.error is None for r in got)
    lines = data.decode().splitlines()
    assert all(lines[r.line - 1].strip() == "{" for r in got)  # the line where each element starts
    assert got[0].line < got[1].line < got[2].line < got[3].line


def test_bad_bytes_and_bad_json_reject_only_their_record(rows):
    lines = [json.dumps(r).encode() for r in rows]
    lines[1] = lines[1][:20] + b"\xff" + lines[1][20:]
    lines[2] = lines[2][:-1]  # cut
    got = records(b"\n".join(lines) + b"\n", "x.jsonl")
    assert [r.value for r in got if r.error is None] == [rows[0], rows[3]]
    assert got[1].error == f"invalid UTF-8 (byte 0xff) at byte offset {len(lines[0]) + 1 + 20}"
    assert got[2].line == 3 and got[2].error.startswith("bad JSON")


def test_a_broken_array_is_a_source_error_unless_it_is_json_lines(rows):
    with pytest.raises(SourceError):
        records(b'[{"instruction": "x",\n  "output": ', "x.json")
    lines = b"\n".join(json.dumps([r]).encode() for r in rows)  # JSON Lines whose records are arrays
    assert [r.value for r in records(lines, "x.json")] == [[r] for r in rows]


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_csv_and_tsv_rows_with_multiline_cells(rows, delimiter):
    rows[0]["output"] = "line one\nline two, with a comma"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["instruction", "input", "output"], delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    got = list(read_csv(b"\xef\xbb\xbf" + out.getvalue().encode(), delimiter))
    assert [r.value for r in got] == rows
    assert [r.line for r in got][:2] == [2, 4]  # the first row spans lines 2-3


def test_csv_bad_bytes_reject_their_row():
    data = b"instruction,output\nSay hi.,Hi.\nSay \xfe.,x\nSay bye.,Bye.\n"
    got = list(read_csv(data, ","))
    assert [r.value for r in got if r.error is None] == [{"instruction": "Say hi.", "output": "Hi."},
                                                         {"instruction": "Say bye.", "output": "Bye."}]
    assert got[1].line == 3 and "invalid UTF-8" in got[1].error
