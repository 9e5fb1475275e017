"""Shared test switches: slow (full-size) tests are opt-in; device tools are required in CI."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

torch.set_num_threads(1)  # two cores, shared: keep tests from fighting the runners they start


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HARNESS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="full-size run: opt in with HARNESS_SLOW=1 (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def require_tool(*names: str) -> None:
    """Skip when a system tool is missing on a developer machine; in CI (HARNESS_REQUIRE_DEVICES=1) fail instead."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    msg = f"missing system tool(s) {', '.join(missing)}: run `make system-deps` as root"
    if os.environ.get("HARNESS_REQUIRE_DEVICES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """One real test-tiny fp32 program (seq 16) exported through the harness, shared by the session's tests."""
    from common.console import silence_libraries
    from harness.export.exporter import ExportRequest, export

    silence_libraries()
    results = tmp_path_factory.mktemp("results")
    res = export(ExportRequest(model="test-tiny", seq_len=16, numerics_samples=16), results)
    return results, res


@pytest.fixture(scope="module")
def bundle():
    """The x86_64 native runner bundle (built once per machine, cached by content hash)."""
    from device_runners.build import build_bundle

    return build_bundle("x86_64")


@pytest.fixture(scope="module")
def tiny():
    """A tiny real program (embedding + linear, seq 8), exported once per machine."""
    from tests.fixtures_programs import cached_tiny_program

    return cached_tiny_program(seq_len=8)
