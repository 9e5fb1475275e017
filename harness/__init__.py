"""harness: on-device benchmarking of compact transformers with ExecuTorch."""

__version__ = "0.1.0"
