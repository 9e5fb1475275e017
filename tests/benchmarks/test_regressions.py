"""`make bench` says which figures regressed against the last committed ones, and never calls a different machine a
regression (benchmarks/regressions.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from regressions import compare  # noqa: E402


def _figures(cpu, **values):
    return {"cpu": cpu, "figures": {k: {"value": v, "better": "higher" if k.endswith("gflops") else "lower"}
                                    for k, v in values.items()}}


def test_a_figure_that_moved_the_wrong_way_past_the_threshold_regressed():
    old = _figures("AMD EPYC (AVX2, FMA)", export_s=100.0, ratio=0.50, gflops=50.0)
    new = _figures("AMD EPYC (AVX2, FMA)", export_s=115.0, ratio=0.40, gflops=40.0)
    kinds = {line.split(":")[0]: kind for kind, line in compare(old, new, 0.10)}
    assert kinds == {"export_s": "regressed", "ratio": "improved", "gflops": "regressed"}
    same = compare(old, _figures("AMD EPYC (AVX2, FMA)", export_s=105.0, ratio=0.5, gflops=48.0), 0.10)
    assert {k for k, _ in same} == {"same"}


def test_another_cpu_is_not_compared():
    out = compare(_figures("AMD EPYC (AVX2, FMA)", export_s=100.0),
                  _figures("AMD EPYC (AVX2, FMA, AVX-512, AVX512-VNNI)", export_s=300.0), 0.10)
    assert [k for k, _ in out] == ["not comparable"] and "a different machine is not a regression" in out[0][1]


def test_the_peak_is_measured_by_real_fma_chains(tmp_path):
    """benchmarks/peak.cpp, built and run as peers.py and gemm_shapes.py use it: a positive rate per thread count."""
    from peak import measured_peak

    peak = measured_peak(threads=1, iterations=200_000)
    assert len(peak["fp32_gflops"]) == 1 and peak["fp32_gflops"][0] > 0 and peak["lanes"] in (4, 8, 16)
    flags = Path("/proc/cpuinfo").read_text()
    has_vnni = " avx512_vnni" in flags or " avx_vnni" in flags
    assert (peak["int8_vnni_gops"] is not None) == has_vnni


def test_the_command_exits_1_when_a_figure_regressed(tmp_path):
    """The CLI against a committed baseline, in a throwaway repository laid out like benchmarks/results/."""
    repo = tmp_path / "repo"
    results = repo / "benchmarks" / "results"
    results.mkdir(parents=True)
    (repo / "benchmarks" / "regressions.py").write_text((REPO / "benchmarks" / "regressions.py").read_text())
    (results / "x.json").write_text(json.dumps(_figures("cpu A", export_s=100.0)))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], check=True)
    (results / "x.json").write_text(json.dumps(_figures("cpu A", export_s=150.0)))
    res = subprocess.run([sys.executable, str(repo / "benchmarks" / "regressions.py")], capture_output=True, text=True)
    assert res.returncode == 1 and "x: regressed: export_s: 100 -> 150 (+50.0%" in res.stdout, res.stdout + res.stderr


def test_the_baseline_is_the_last_commit_from_this_cpu_even_when_another_machine_committed_since(tmp_path):
    """Sessions alternate between machines: A's figures, then B's, then a new run on A compares with A's commit."""
    repo = tmp_path / "repo"
    results = repo / "benchmarks" / "results"
    results.mkdir(parents=True)
    (repo / "benchmarks" / "regressions.py").write_text((REPO / "benchmarks" / "regressions.py").read_text())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    for cpu, seconds in (("cpu A", 100.0), ("cpu B", 300.0)):
        (results / "x.json").write_text(json.dumps(_figures(cpu, export_s=seconds)))
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", cpu], check=True)
    (results / "x.json").write_text(json.dumps(_figures("cpu A", export_s=150.0)))
    res = subprocess.run([sys.executable, str(repo / "benchmarks" / "regressions.py")], capture_output=True, text=True)
    assert res.returncode == 1 and "x: regressed: export_s: 100 -> 150 (+50.0%" in res.stdout, res.stdout + res.stderr
    (results / "x.json").write_text(json.dumps(_figures("cpu C", export_s=150.0)))
    res = subprocess.run([sys.executable, str(repo / "benchmarks" / "regressions.py")], capture_output=True, text=True)
    assert res.returncode == 0 and "x: not comparable: measured on cpu C" in res.stdout, res.stdout + res.stderr
