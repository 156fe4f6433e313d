"""The infrastructure every command stands on, and nothing of the domain: the params sections and
their loading (``config``, ``preset``, ``paramdoc``), the command declarations and their registry
(``command``), row files (``io``), user errors (``errors``) and logging (``logs``).

It imports nothing from the rest of the package (``tests/unit/test_import_layers.py``), so each
stage of ``dvc.yaml`` names it once, as one dependency: ``${pkg}/infra``.
"""
