"""Pipeline stages. Each module has a thin ``main(argv)`` and a pure ``run(cfg, inputs, outputs)``."""
