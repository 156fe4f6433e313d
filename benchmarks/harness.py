"""What every benchmark prints, in one place: the machine, the sizes, the load, the repeats, the ratio.

A figure is only worth comparing if one knows where it came from. Each benchmark here:

- prints the machine (CPU model, logical CPUs, torch threads, torch version, device and GPU);
- prints its sizes (rows, tokens, lengths);
- prints the 1-minute load average before and after (a figure taken with a load above the
  number of CPUs was shared with other jobs: compare it with care);
- runs each side ``--repeats`` times (at least 3), alternating the sides so that a change of
  load hits both, and reports the median (with min and max);
- ends with exactly one line ``ratio: X.XX (target Y)``, the line a reader or a script greps.

    from harness import Bench
    bench = Bench("score_throughput", {"rows": 32}, device)
    times = bench.alternate({"reference": ref_fn, "batched": new_fn}, repeats=3)
    bench.finish(times["reference"].median / times["batched"].median, ">= 1.3")

It also holds what the benchmarks share about their inputs: :data:`SHARED_DATA` (the real files)
and :func:`ensure_model` (the embedded student, built when a clone has none).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_REPEATS = 3
REPO = Path(__file__).resolve().parents[1]
# The larger real files: ../shared/data beside the clone, or RT_SHARED_DATA (as the tests find them).
SHARED_DATA = Path(os.environ.get("RT_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"  # the models stage's student directory


def ensure_model(path: Path = DEFAULT_MODEL) -> Path:
    """``path``, a transformers model directory; when it has no ``config.json``, the models stage's
    ``run`` builds it (params.yaml's ``models:`` section): the embedded GGUF copied beside it as
    ``<name>.gguf`` (the teacher's file), dequantized into ``path``, its metrics in
    ``models_benchmark.json`` beside it. Minutes on a CPU, once.

    Raises:
        UserError: the package holding the GGUF is not installed (``make setup`` installs it).
        ConfigError: params.yaml's ``models:`` section does not match the stage's config.
    """
    if (path / "config.json").exists():
        return path
    from reflection_tuning.infra.config import section_config
    from reflection_tuning.stages.models import Config, Outputs, run

    print(f"building the embedded model into {path} (the models stage)", flush=True)
    cfg = section_config(Config, "models", REPO / "params.yaml")
    run(cfg, Outputs(model_dir=path, gguf=path.parent / f"{path.name}.gguf",
                     metrics=path.parent / "models_benchmark.json"))
    return path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The CPU features that decide matmul speed (AVX-512, bf16, AMX), as /proc/cpuinfo lists them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return [f for f in wanted if f in flags]


def machine(device: Any = "cpu") -> dict[str, Any]:
    """The machine a figure comes from: CPU, threads, torch, device (and GPU name/memory on CUDA)."""
    import torch

    info = {"cpu": cpu_model(), "cpu_flags": " ".join(cpu_flags()), "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device)}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda)
    return info


def shared(load_before: float, load_after: float, cpus: int, threads: int) -> bool:
    """Whether other jobs shared the machine: a load above the CPU count before the run, or
    after it more than one runnable process beyond the benchmark's own ``threads`` (which
    the 1-minute average still counts when the last repeat ends)."""
    return load_before > cpus or load_after > threads + 1


def load1() -> float:
    """The 1-minute load average (runnable processes; above the CPU count means contention)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


@dataclass
class Timing:
    """Seconds of each repeat of one side."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def __str__(self) -> str:
        s = self.seconds
        return f"median {self.median:8.2f} s (min {min(s):.2f}, max {max(s):.2f}, n={len(s)})"


def sync(device: Any) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: Any = "cpu", dtype: str = "float32", n: int = 1024, k: int = 576, m: int = 1536,
                repeats: int = 5) -> float:
    """Measured GFLOP/s of a ``[n, k] x [k, m]`` matmul (an MLP projection of a 135M model), best of
    ``repeats``: what this device can reach on the scorer's own shapes, the roof of its FLOP/s."""
    import torch

    a = torch.randn(n, k, dtype=getattr(torch, dtype), device=device)
    b = torch.randn(k, m, dtype=getattr(torch, dtype), device=device)
    reps = max(1, int(2e9 / (2 * n * k * m)))  # ~2 GFLOP a timing
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n * k * m * reps / best / 1e9


class Bench:
    """One benchmark run: prints the header at creation and the ratio line at :meth:`finish`."""

    def __init__(self, name: str, sizes: dict[str, Any], device: Any = "cpu") -> None:
        self.name, self.sizes, self.device = name, dict(sizes), device
        self.machine = machine(device)
        self.load_before = load1()
        self.timings: dict[str, Timing] = {}
        self.figures: dict[str, Any] = {}
        print(f"== {name}")
        print("machine: " + ", ".join(f"{k} {v}" for k, v in self.machine.items()))
        print("sizes:   " + ", ".join(f"{k} {v}" for k, v in self.sizes.items()))
        print(f"load average (1 min) before: {self.load_before:.2f} on {self.machine['logical_cpus']} CPUs",
              flush=True)

    def alternate(self, sides: dict[str, Callable[[], Any]], repeats: int = MIN_REPEATS) -> dict[str, Any]:
        """Run each side ``repeats`` times, alternating (A B A B ...); returns each side's last result.

        The timings are in :attr:`timings` (seconds of each repeat, synchronized on CUDA).
        """
        if repeats < MIN_REPEATS:
            print(f"note: {repeats} repeat(s), fewer than {MIN_REPEATS}: the median is not a robust figure")
        last: dict[str, Any] = {}
        for r in range(repeats):
            for label, fn in sides.items():
                sync(self.device)
                t0 = time.perf_counter()
                last[label] = fn()
                sync(self.device)
                seconds = time.perf_counter() - t0
                self.timings.setdefault(label, Timing()).seconds.append(seconds)
                print(f"  repeat {r + 1}/{repeats} {label:<24} {seconds:8.2f} s  (load {load1():.2f})", flush=True)
        return last

    def median(self, label: str) -> float:
        return self.timings[label].median

    def finish(self, ratio: float, target: str, json_path: Path | None = None, **figures: Any) -> dict[str, Any]:
        """Print the medians, the load after, and the final ``ratio: X.XX (target Y)`` line."""
        self.figures.update(figures)
        load_after = load1()
        for label, t in self.timings.items():
            print(f"{label:<24} {t}")
        print(f"load average (1 min) after: {load_after:.2f} on {self.machine['logical_cpus']} CPUs")
        if shared(self.load_before, load_after, self.machine["logical_cpus"] or 1, self.machine["torch_threads"]):
            print("note: the load exceeded the CPU count; this run shared the machine with other jobs")
        out = {"benchmark": self.name, **self.machine, **self.sizes, "load_before": self.load_before,
               "load_after": load_after, **{f"seconds_{k}": t.median for k, t in self.timings.items()},
               **self.figures, "ratio": round(ratio, 4), "target": target}
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"ratio: {ratio:.2f} (target {target})", flush=True)
        return out
