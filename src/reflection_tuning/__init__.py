"""reflection-tuning: Reflection-Tuning and Selective Reflection-Tuning as a DVC pipeline."""

__version__ = "0.1.0"
