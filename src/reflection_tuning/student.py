"""The ``student:`` params section, shared by the stages that load the student model
(``score``, ``finetune``, ``evaluate``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StudentConfig:
    """``student:``: the model that scores (IFD, r-IFD), is fine-tuned and evaluated.

    ``model``: a local transformers directory (or a hub id where the hub is reachable).
    """

    model: str


def resolve_device(device: str) -> str:
    """``auto`` is ``cuda`` when CUDA is available, else ``cpu``; ``cpu``/``cuda``/``cuda:N`` as given.

    Raises:
        UserError: an unknown device, or CUDA asked for but not available.
    """
    import torch

    from reflection_tuning.infra.errors import UserError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
        return device
    raise UserError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N")
