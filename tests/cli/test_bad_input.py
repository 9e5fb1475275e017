"""Every user mistake gives one line naming the culprit and a non-zero exit, never a traceback, and leaves the
results store and earlier runs intact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store.record import RunRecord

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(*args: str, results: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HARNESS_RESULTS=str(results))
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=600, env=env)


def assert_user_error(proc: subprocess.CompletedProcess, *must_name: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    err = proc.stderr.strip()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no error message"
    for s in must_name:
        assert s in err, f"{s!r} not named in: {err}"


@pytest.fixture()
def damaged(tiny_export, tmp_path):
    """Damaged copies of a real program: empty, truncated, garbage, bit-flipped (with and without manifest)."""
    _, res = tiny_export
    data = res.program.read_bytes()
    out = {}
    out["empty"] = tmp_path / "empty.pte"
    out["empty"].write_bytes(b"")
    out["truncated"] = tmp_path / "truncated.pte"
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["garbage"] = tmp_path / "garbage.pte"
    out["garbage"].write_bytes(os.urandom(4096))
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x10
    out["flipped"] = tmp_path / "flipped.pte"
    out["flipped"].write_bytes(bytes(flipped))
    shutil.copyfile(res.program.with_suffix(".json"), tmp_path / "flipped.json")
    header = bytearray(data)
    for i in range(8, 64):
        header[i] ^= 0xFF
    out["header"] = tmp_path / "header.pte"
    out["header"].write_bytes(bytes(header))
    return out


@pytest.fixture(scope="module")
def store_with_a_run(tiny_export):
    from harness.run import measure

    results, res = tiny_export
    rec = measure.run(measure.RunRequest.of(program=res.program, iterations=3, warmup=1), results)
    assert rec.status in ("ok", "invalid"), rec.error
    return results


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "flipped", "header"])
def test_damaged_program_is_refused_and_store_kept(kind, damaged, store_with_a_run):
    from harness.store.db import ResultsStore

    results = store_with_a_run
    before = {r.run_id: r.status for r in ResultsStore(results).runs()}
    proc = harness("run", "--program", str(damaged[kind]), "--iterations", "3", results=results)
    assert_user_error(proc, damaged[kind].name)
    after = {r.run_id: r.status for r in ResultsStore(results).runs()}
    # earlier runs are all still there, unchanged (a failed load may add its own failed row, never remove one)
    assert all(after.get(k) == v for k, v in before.items())


@pytest.mark.parametrize(
    "args, named",
    [
        (["export", "--model", "no-such-preset"], ["no-such-preset"]),
        (["export", "--model", "test-tiny", "--quant", "int3"], ["int3"]),
        (["export", "--checkpoint", "/nonexistent/ckpt"], ["/nonexistent/ckpt"]),
        (["export", "--model", "test-tiny", "--seq-len", "0"], ["--seq-len"]),
        (["run", "--program", "/nonexistent/x.pte"], ["/nonexistent/x.pte"]),
        (["run", "--program", "PROGRAM", "--iterations", "0"], ["--iterations"]),
        (["run", "--program", "PROGRAM", "--device", "no-such-device"], ["no-such-device"]),
        (["report", "--format", "docx"], ["docx"]),
        (["run", "--program", "PROGRAM", "--threads", "0"], ["--threads", "at least 1"]),
        (["run", "--program", "PROGRAM", "--threads", "2,x"], ["--threads", "comma list"]),
        (["run", "--program", "PROGRAM", "--threads", "1,2,1"], ["--threads", "1 is listed twice"]),
        (["export", "--model", "test-tiny", "--seq-len", "32,16,32"], ["--seq-len", "32 is listed twice"]),
    ],
)
def test_bad_flags_name_the_culprit(args, named, tiny_export, tmp_path):
    results, res = tiny_export
    args = [str(res.program) if a == "PROGRAM" else a for a in args]
    assert_user_error(harness(*args, results=tmp_path / "r"), *named)


def test_checkpoint_without_config(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"not really")
    assert_user_error(harness("export", "--checkpoint", str(ckpt), results=tmp_path / "r"), "config.json")


def test_checkpoint_with_mismatched_shapes(tmp_path):
    from transformers import MobileBertConfig, MobileBertForSequenceClassification

    cfg = MobileBertConfig(vocab_size=100, embedding_size=16, hidden_size=32, intra_bottleneck_size=16,
                           true_hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           num_feedforward_networks=1, max_position_embeddings=64)
    ckpt = tmp_path / "ckpt"
    MobileBertForSequenceClassification(cfg).save_pretrained(ckpt)
    import json

    c = json.loads((ckpt / "config.json").read_text())
    c["intermediate_size"] = 48  # the weights no longer fit the config
    (ckpt / "config.json").write_text(json.dumps(c))
    assert_user_error(harness("export", "--checkpoint", str(ckpt), results=tmp_path / "r"), "shape")


def test_unreachable_device_is_refused_before_any_run_is_stored(tiny_export, tmp_path):
    """Nothing reached the device: one line and exit 2, and no failed run sits in every report from then on."""
    from harness.store.db import ResultsStore

    _, res = tiny_export
    results = tmp_path / "r"
    ResultsStore(results).add(RunRecord(run_id="earlier", created_at="2026-12-01T00:00:00+00:00", status="ok",
                                        device="host"))
    proc = harness("run", "--program", str(res.program), "--device", "rpi5", "--address", "nobody@127.0.0.1:1",
                   "--iterations", "3", results=results)
    assert_user_error(proc, "rpi5", "127.0.0.1:1")
    assert "connection refused" in proc.stderr.lower() and proc.returncode == 2
    assert [r.run_id for r in ResultsStore(results).runs()] == ["earlier"]
