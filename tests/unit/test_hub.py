"""``push`` against a local HTTP server that speaks the Hub's upload protocol and records the requests.

The server answers the endpoints huggingface_hub calls for a small upload: create the
repository, validate the card's YAML (accepted as is: the real check is the Hub's), the
pre-upload check (every file "regular", so no LFS/Xet transfer), and the commit (NDJSON: a
header, then one base64 file per line).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from shipped import write_params

from reflection_tuning import hub

from .conftest import serve_app

TOKEN = "hf_fake_token_never_written_1234"


class FakeHub:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.url = ""
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path,
                              "auth": request.headers.get("authorization"), "body": body})
        if self.status != 200:
            return web.json_response({"error": "forbidden"}, status=self.status)
        if request.path == "/api/repos/create":
            payload = json.loads(body)
            return web.json_response({"url": f"{self.url}/datasets/{payload['organization']}/{payload['name']}"})
        if request.path == "/api/validate-yaml":  # the Hub checks the card's YAML before the upload
            return web.json_response({})
        if request.path.endswith("/preupload/main"):
            files = json.loads(body)["files"]
            return web.json_response({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                for f in files]})
        if request.path.endswith("/commit/main"):
            return web.json_response({"commitUrl": f"{self.url}/datasets/org/name/commit/abc123",
                                      "commitOid": "abc123" + "0" * 34, "pullRequestUrl": None})
        return web.json_response({"error": f"not emulated: {request.method} {request.path}"}, status=404)


@pytest.fixture
def fake_hub(monkeypatch) -> Iterator[FakeHub]:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests run offline; this server is local
    fake = FakeHub()
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    with serve_app(app) as base:
        fake.url = base
        yield fake


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: other\n---\n# card\n")
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    return folder


def test_push_uploads_every_file_in_one_commit(fake_hub, tmp_path):
    folder = _folder(tmp_path)
    url = hub.push(folder, "org/name", TOKEN, private=True, endpoint=fake_hub.url)
    assert url.endswith("/commit/abc123")
    paths = [r["path"] for r in fake_hub.requests]
    assert paths[0] == "/api/repos/create" and paths[-1] == "/api/datasets/org/name/commit/main"
    create = json.loads(fake_hub.requests[0]["body"])
    assert create["type"] == "dataset" and create["name"] == "name"
    assert create.get("visibility", create.get("private")) in ("private", True)
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in fake_hub.requests)
    lines = [json.loads(line) for line in fake_hub.requests[-1]["body"].decode().splitlines() if line.strip()]
    files = {v["value"]["path"]: base64.b64decode(v["value"]["content"]) for v in lines if v["key"] == "file"}
    assert files == {"README.md": (folder / "README.md").read_bytes(),
                     "data/train-00000-of-00001.parquet": (folder / "data/train-00000-of-00001.parquet").read_bytes()}


def test_push_refused_is_a_user_error(fake_hub, tmp_path):
    fake_hub.status = 403
    with pytest.raises(hub.PushError, match="refused"):
        hub.push(_folder(tmp_path), "org/name", TOKEN, endpoint=fake_hub.url)


def test_push_offline_is_a_user_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.PushError, match="HF_HUB_OFFLINE"):
        hub.push(_folder(tmp_path), "org/name", TOKEN, endpoint="http://127.0.0.1:9")


def test_push_needs_an_export_and_a_token(tmp_path, monkeypatch):
    with pytest.raises(hub.PushError, match="run 'reflection-tuning export' first"):
        hub.push(tmp_path, "org/name", TOKEN)
    monkeypatch.delenv("RT_TEST_HUB_TOKEN", raising=False)
    params = write_params(tmp_path / "params.yaml", export={"token_env": "RT_TEST_HUB_TOKEN"})
    with pytest.raises(hub.PushError, match="RT_TEST_HUB_TOKEN"):
        hub.main(["--params", str(params), "--repo", "org/name", "--folder", str(_folder(tmp_path))])
    with pytest.raises(SystemExit):  # neither --dataset nor --folder
        hub.main(["--params", str(params), "--repo", "org/name"])
