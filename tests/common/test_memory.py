"""A process that does several jobs measures each one's peak memory, not the largest of all of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.memory import peak_rss_mb, reset_peak_rss

BIG_MB = 256


def _touch(mb: int) -> None:
    block = bytearray(mb * 2**20)
    block[:: 4096] = b"x" * len(block[:: 4096])  # every page resident
    del block  # a block this size is an mmap: freed back to the kernel at once


def test_a_reset_peak_forgets_a_freed_block():
    if not reset_peak_rss():
        pytest.skip("this kernel cannot reset VmHWM (/proc/self/clear_refs)")
    base = peak_rss_mb()
    _touch(BIG_MB)
    assert peak_rss_mb() >= base + BIG_MB * 0.9
    assert reset_peak_rss()
    assert peak_rss_mb() < base + BIG_MB * 0.5


def test_the_export_peak_in_a_manifest_is_that_exports_own(tmp_path):
    """An export after a larger job in one process (a pool worker, `harness export --quant int8,fp32`) used to
    report that job's peak; a tiny export's peak stays far under a block freed before it."""
    if not reset_peak_rss():
        pytest.skip("this kernel cannot reset VmHWM (/proc/self/clear_refs)")
    code = f"""
import sys
from common.memory import peak_rss_mb
from tests.common.test_memory import _touch
from harness.export.exporter import ExportRequest, export
_touch({BIG_MB * 4})
before = peak_rss_mb()
res = export(ExportRequest(model="test-tiny", seq_len=8, numerics_task=None), sys.argv[1])
print(before, res.manifest.export_peak_rss_mb)
"""
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    before, exported = map(float, p.stdout.split()[-2:])
    assert exported < before - BIG_MB * 2, (before, exported)


def test_a_trimmed_heap_is_handed_back():
    """Freed small allocations below a live one stay resident until the heap is trimmed (what a pool worker does
    between exports, so the next export's peak starts from the worker's own size)."""
    code = """
import gc
from common.memory import rss_mb, trim_heap
blocks = [bytearray(2000) for _ in range(100_000)]  # about 200 MB of heap, in chunks malloc keeps on its heap
pin = bytearray(2000)  # a live chunk above them: the heap's top cannot shrink past it
del blocks
gc.collect()
before = rss_mb()
trim_heap()
print(before, rss_mb())
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    before, after = map(float, p.stdout.split())
    assert after < before - 100, (before, after)
