"""What the terminal and a pipe show: no hard wrap when piped, library chatter kept off, status lines throttled."""

from __future__ import annotations

import os
import subprocess
import sys


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "", "TERM": "dumb"})


def test_piped_output_is_not_wrapped_at_80_columns():
    p = _py("from common.console import console\n"
            "console.print('latency p50 0.08 ms (95% CI 0.08-0.08), p90 0.12 ms, n=3880, cv 3.480; '"
            " 'load 4.8 ms, first inference 1.0 ms ' * 2)")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 1 and "load 4.8 ms" in p.stdout  # grep-able: one record, one line


def test_native_log_pieces_are_silenced_both_ways():
    # ExecuTorch's pybindings redirect std::cerr to sys.stderr piece by piece; plain C++ writes go to fd 2
    p = _py("import os, sys\n"
            "from common.console import native_stderr_silenced\n"
            "with native_stderr_silenced():\n"
            "    for piece in ('[', 'cpuinfo_utils.cpp', ':', '71', '] ', 'Reading file\\n'):\n"
            "        sys.stderr.write(piece); sys.stderr.flush()\n"
            "    os.write(2, b'[threadpool.cpp:66] Resetting threadpool\\n')\n"
            "sys.stderr.write('after\\n')\n")
    assert p.returncode == 0 and p.stderr == "after\n"


def test_piped_status_prints_step_changes_not_every_count():
    p = _py("from common.console import status\n"
            "with status('running x') as update:\n"
            "    for i in range(50):\n"
            "        update(f'host: timing, {i} iterations of at least 10, {i} s elapsed')\n"
            "    update('collecting the results from host')\n")
    lines = p.stderr.splitlines()
    assert [ln.split("  [")[0] for ln in lines] == [
        "… running x", "… host: timing, 0 iterations of at least 10, 0 s elapsed", "… collecting the results from host"]
    assert all(ln.endswith("[0:00]") for ln in lines)  # elapsed time in all
