"""Command ``push``: upload ``data/K/export/`` to a Hugging Face dataset repository.

``reflection-tuning push --dataset K --repo ORG/NAME`` creates the repository if needed
(private unless ``export.private`` is false) and uploads the folder in one commit with
:mod:`huggingface_hub`. The token is read from the environment variable named by
``export.token_env`` (default ``HF_TOKEN``), never from params or the command line; the
endpoint is the library's (``HF_ENDPOINT`` changes it, as for every huggingface_hub call).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from reflection_tuning.export import Config
from reflection_tuning.infra.command import Call, Flag, Section, Stage
from reflection_tuning.infra.errors import UserError

log = logging.getLogger(__name__)


class PushError(UserError):
    """Nothing to push, no token, or the Hub refused the upload."""


def push(folder: Path, repo: str, token: str, private: bool = True, endpoint: str | None = None,
         message: str = "reflection-tuning export") -> str:
    """Create ``repo`` (a dataset, ``exist_ok``) and upload ``folder`` as one commit; returns the commit URL.

    Raises:
        PushError: ``folder`` has no README.md (run ``export`` first), offline mode is on
            (``HF_HUB_OFFLINE``), or the Hub answered with an error.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if not (folder / "README.md").is_file():
        raise PushError(f"push: {folder} has no README.md; run 'reflection-tuning export' first")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=folder, repo_id=repo, repo_type="dataset", commit_message=message)
    except OfflineModeIsEnabled as e:
        raise PushError("push: HF_HUB_OFFLINE is set; unset it to upload") from e
    except HfHubHTTPError as e:
        raise PushError(f"push: the Hub refused the upload to {repo}: {e}") from e
    log.info("push: uploaded %s to %s (%s)", folder, repo, info.commit_url)
    return info.commit_url


def invoke(call: Call) -> None:
    """Push the folder with the token from the environment variable ``export.token_env`` names."""
    (cfg,) = call.configs
    token = os.environ.get(cfg.token_env)
    if not token:
        raise PushError(f"push: set the Hub token in the environment variable {cfg.token_env} (export.token_env)")
    push(call.inputs["folder"], call.args.repo, token, private=cfg.private)


# A command outside dvc.yaml: the folder is export's output.
STAGE = Stage("push", __doc__, sections=(Section(Config, "export"),),
              inputs={"folder": "data/{dataset}/export"},
              flags=(Flag("--repo", required=True, help="the dataset repository, ORG/NAME"),),
              invoke=invoke)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
