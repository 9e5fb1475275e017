"""System tools the device tests need: skipped on a developer machine that lacks them, required in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(*names: str) -> None:
    """Skip when a system tool is missing on a developer machine; in CI (HARNESS_REQUIRE_DEVICES=1) fail instead."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    msg = f"missing system tool(s) {', '.join(missing)}: run `make system-deps` as root"
    if os.environ.get("HARNESS_REQUIRE_DEVICES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)
