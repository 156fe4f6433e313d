"""The pipeline's stages, one module each: ``stages/<name>.py`` is the stage ``<name>`` of
``dvc.yaml`` and ``reflection-tuning <name>``.

`COMMANDS` is the one list of the commands of ``reflection-tuning``: each name with the module
that declares it (its ``STAGE``) and runs it (its ``main``). The stages of ``dvc.yaml`` come
first, in pipeline order, and are `STAGES`: the CLI, the report and the ``dvc.yaml`` check
(``tests/unit/stages/test_dvc_yaml.py``) read them.
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
COMMANDS = {
    **{name: f"reflection_tuning.stages.{name}" for name in STAGES},
    # the commands outside dvc.yaml: they write no DVC outs of the pipeline
    "export": "reflection_tuning.stages.export",
    "compress": "reflection_tuning.stages.compress",
    "estimate": "reflection_tuning.estimate",
    "compare": "reflection_tuning.compare",
    "push": "reflection_tuning.hub",
}
