"""The student section and the device choice."""

from __future__ import annotations

import pytest
import torch
from shipped import params_config

from reflection_tuning.infra.errors import UserError
from reflection_tuning.student import StudentConfig, resolve_device


def test_the_student_comes_from_params_only():
    assert isinstance(params_config(StudentConfig, "student").model, str)
    with pytest.raises(TypeError):
        StudentConfig()  # no default of its own: params.yaml holds the value


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device 'tpu'; expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_says_what_to_use():
    for device in ("cuda", "cuda:1"):
        with pytest.raises(UserError, match="not available; use 'auto' or 'cpu'"):
            resolve_device(device)
