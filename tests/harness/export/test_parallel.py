"""The demo's exports run in worker processes, several at a time (harness/export/parallel.py): the programs are the
bytes a sequential export makes, a worker's user-facing error comes back as that error, and however the demo ends
(Ctrl-C, SIGTERM, SIGKILL) no export process is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from common.errors import BadInput
from harness.export.exporter import ExportRequest, export
from program.manifest import sha256_file
from harness.export.parallel import ExportPool
from harness.export.recipes import RecipeOptions

WORKER = "harness.export.parallel"


def _requests():
    return [ExportRequest(model="test-tiny", recipe=r, seq_len=s, options=RecipeOptions(), calibration_samples=16,
                          numerics_samples=8) for r, s in (("fp32", 32), ("int8", 32), ("fp32", 16))]


def test_parallel_exports_make_the_programs_a_sequential_export_makes(tmp_path):
    sequential = [export(req, tmp_path / "one") for req in _requests()]
    with ExportPool(tmp_path / "two", jobs=2) as pool:
        for req in _requests():
            pool.submit(req)
        pool.start()
        assert len(pool.pids()) == 2  # two lowerings at once, each in a process of its own
        parallel = pool.wait()
        assert pool.launched == 2  # the third program went to whichever worker was free first: no third start
    assert [Path(r.program).name for r in parallel] == [Path(r.program).name for r in sequential]
    for seq, par in zip(sequential, parallel):
        assert not par.cached and par.manifest.status == "ok"
        assert sha256_file(par.program) == sha256_file(seq.program) == par.manifest.program_sha256
    again = ExportPool(tmp_path / "two", jobs=1)
    with again:  # a second pass finds every program in the cache: nothing is lowered again, by one worker
        for req in _requests():
            again.submit(req)
        assert all(r.cached for r in again.wait()) and again.launched == 1


def test_a_workers_user_error_comes_back_as_that_error(tmp_path):
    bad = ExportRequest(model="test-tiny", checkpoint=tmp_path / "no-such-checkpoint", seq_len=32)
    with ExportPool(tmp_path, jobs=2) as pool:
        pool.submit(bad)
        (result,) = pool.wait()
    assert isinstance(result, BadInput) and "no-such-checkpoint" in str(result)


def _workers_of(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [c for c in proc.children(recursive=True) if WORKER in " ".join(c.cmdline())]
    except psutil.Error:
        return []


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_demo_leaves_no_export_process_behind(tmp_path, sig):
    (tmp_path / "tmp").mkdir()  # the pool's request folder, which a SIGKILL leaves for the next pool to sweep
    env = dict(os.environ, HARNESS_RESULTS=str(tmp_path), TMPDIR=str(tmp_path / "tmp"))
    demo = subprocess.Popen([sys.executable, "-m", "harness.cli", "demo", "--model", "test-tiny", "--seq-len", "32",
                             "--quant", "fp32,int8", "--repeat", "1", "--samples", "4", "--student-model",
                             "test-tiny", "--student-steps", "3", "--accuracy-samples", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: set[int] = set()
    try:
        me = psutil.Process(demo.pid)
        while not seen and demo.poll() is None:  # until the first export worker is running
            seen |= {p.pid for p in _workers_of(me)}
            time.sleep(0.05)
        assert seen, "the demo ended before any export worker started"
        assert not all(_gone(pid) for pid in seen)  # one was running when the signal came
        demo.send_signal(sig)
        out, err = demo.communicate(timeout=300)
    finally:
        if demo.poll() is None:
            demo.kill()
    if sig != signal.SIGKILL:
        assert demo.returncode == 130 and f"interrupted by {sig.name}" in err and "Traceback" not in err
    deadline = time.monotonic() + 60  # a worker ends within its grace period; this only bounds a failing test
    while time.monotonic() < deadline and not all(_gone(pid) for pid in seen):
        time.sleep(0.1)
    assert all(_gone(pid) for pid in seen), [psutil.Process(p).cmdline() for p in seen if not _gone(p)]


def test_as_many_exports_at_once_as_cores_and_memory_hold(monkeypatch):
    from harness.export import parallel

    monkeypatch.setattr(parallel, "_cores", lambda: 4)
    monkeypatch.setattr(parallel, "_available_bytes", lambda: 9 * 2**30)
    # 9 GB holds two of the heaviest exports measured (the LayerNorm variants' int8 at 3.73 GB), not three
    assert parallel.default_jobs(6) == 2 and parallel.default_jobs(1) == 1
    monkeypatch.setattr(parallel, "_available_bytes", lambda: 3 * 2**30)
    assert parallel.default_jobs(6) == 1  # never none
    monkeypatch.setattr(parallel, "_available_bytes", lambda: 64 * 2**30)
    assert parallel.default_jobs(6) == 4  # then the cores bound it


def test_a_killed_harnesss_temporaries_are_swept_by_the_next_pool(tmp_path, monkeypatch):
    """SIGKILL leaves the pool no chance to remove its folder of requests; the next pool removes the folders of
    harness processes that are gone, and leaves a live one's alone."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"harness-export-{gone.pid}-x1"
    live = tmp_path / f"harness-export-{os.getppid()}-x2"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "0.request").write_bytes(b"left")
    with ExportPool(tmp_path / "results", jobs=1):
        assert not dead.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]  # the pool's own went when it closed
