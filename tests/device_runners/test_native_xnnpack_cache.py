"""--xnnpack-cache: the first run packs and writes XNNPACK's packed weights, later runs mmap them instead of packing;
outputs stay bit-identical and the result says which happened."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from device_runners.launch import bundle_command
from tests.support.fixtures_programs import write_token_inputs


def run(bundle: Path, pte: Path, tmp: Path, tag: str, *extra) -> tuple[subprocess.CompletedProcess, dict]:
    args = ["--program", pte, "--inputs", tmp / "in.bin", "--result", tmp / f"{tag}.json", "--outputs",
            tmp / f"{tag}.bin", "--warmup", 1, "--iterations", 3, "--threads", 1, *extra]
    p = subprocess.run(bundle_command(str(bundle), "x86_64", [str(a) for a in args]), shell=True,
                       capture_output=True, text=True, timeout=120)
    return p, json.loads((tmp / f"{tag}.json").read_text())


def test_cache_is_written_then_reused_with_identical_outputs(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 4)
    cache = tmp_path / "tiny.xnnpack"
    p0, plain = run(bundle, tiny[0], tmp_path, "plain")
    p1, first = run(bundle, tiny[0], tmp_path, "first", "--xnnpack-cache", cache)
    assert p0.returncode == 0 and p1.returncode == 0, p0.stderr + p1.stderr
    assert plain["xnnpack_cache"] is None
    assert first["xnnpack_cache"] == {"path": str(cache), "state": "written"}
    assert cache.stat().st_size > 0
    written = cache.read_bytes()
    p2, again = run(bundle, tiny[0], tmp_path, "again", "--xnnpack-cache", cache)
    assert p2.returncode == 0, p2.stderr
    assert again["xnnpack_cache"]["state"] == "reused"
    assert cache.read_bytes() == written, "a reused cache must not be rewritten"
    out = (tmp_path / "plain.bin").read_bytes()
    assert (tmp_path / "first.bin").read_bytes() == out and (tmp_path / "again.bin").read_bytes() == out


def test_unwritable_cache_names_the_flag(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 1)
    p, r = run(bundle, tiny[0], tmp_path, "bad", "--xnnpack-cache", tmp_path / "no-such-dir" / "c.bin")
    assert p.returncode == 1
    assert "--xnnpack-cache" in r["error"] and "no-such-dir" in r["error"]


def test_python_runner_refuses_the_cache_by_name(tiny, tmp_path):
    from device_runners.python_runner import main

    write_token_inputs(tmp_path / "in.bin", 1)
    rc = main(["--program", str(tiny[0]), "--inputs", str(tmp_path / "in.bin"), "--result", str(tmp_path / "r.json"),
               "--xnnpack-cache", str(tmp_path / "c.bin")])
    err = json.loads((tmp_path / "r.json").read_text())["error"]
    assert rc == 1 and "--xnnpack-cache" in err and "native runner" in err
    assert not (tmp_path / "c.bin").exists()
