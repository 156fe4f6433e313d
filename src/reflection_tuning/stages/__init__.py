"""The pipeline's stages, one module each: ``stages/<name>.py`` is the stage ``<name>`` of
``dvc.yaml`` and ``reflection-tuning <name>``.

`STAGES` is the one list of the stages of ``dvc.yaml``, in pipeline order: the CLI, the report
and the ``dvc.yaml`` check (``tests/unit/stages/test_dvc_yaml.py``) read it.
"""

STAGES = (
    "models",
    "fetch",
    "reflect_instruction",
    "reflect_response",
    "score",
    "select",
    "finetune",
    "finetune_baseline",
    "evaluate",
    "generate",
    "judge",
    "report",
)
# Commands declared like stages (``stages/<name>.py`` with a ``STAGE``) that ``dvc.yaml`` does not run.
COMMANDS = STAGES + ("export", "compress")
