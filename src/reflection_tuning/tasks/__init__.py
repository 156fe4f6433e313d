"""Local lm-evaluation-harness tasks that read the benchmark files from disk (no hub access).

Each ``rt_*.yaml`` here is a declarative lm-eval task in the harness's own style; its
``dataset_kwargs.data_files`` are relative to the benchmark directory (``evaluate.data_dir``)
and are made absolute by :func:`reflection_tuning.tasks.load.task_configs`.
``utils.py`` holds the ``process_docs`` / loader / ``process_results`` functions the YAMLs
name with ``!function utils.<name>``.
"""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
