"""Where things are: the repository (for subprocesses' PYTHONPATH and its files) and the fixture files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"  # small hand-checked files: SQuAD v1.1/v2.0 tasks, a store the v1 harness wrote
