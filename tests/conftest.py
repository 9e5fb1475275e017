"""Shared test switches and fixtures: slow (full-size) tests are opt-in; one tiny program and one runner bundle
per session or module. Helpers tests import live in tests/support/."""

from __future__ import annotations

import os

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
    from tests.support.fixtures_programs import cached_tiny_program

    return cached_tiny_program(seq_len=8)
