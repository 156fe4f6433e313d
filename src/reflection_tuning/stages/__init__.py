"""The pipeline's stages, one module each: ``stages/<name>.py`` is the stage ``<name>`` of
``dvc.yaml`` and ``reflection-tuning <name>``. The list of them, and of the commands outside
``dvc.yaml``, is :data:`reflection_tuning.infra.command.COMMANDS`.
"""
