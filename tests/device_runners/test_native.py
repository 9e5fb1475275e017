"""The native x86_64 runner on a real XNNPACK program: numbers vs the Python runtime and eager torch, JSON fields,
iterations/min-seconds, and clear errors (never a hang) on damaged programs and wrong inputs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from device_runners.base import RawResult
from device_runners.launch import bundle_command
from device_runners.tensorfile import read_tensors, write_tensors
from tests.support.fixtures_programs import cached_tiny_program, eager_outputs, write_token_inputs

FIRST_CPU = str(min(os.sched_getaffinity(0)))  # CPU 0 may be outside a cpuset


def run_native(bundle: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = bundle_command(str(bundle), "x86_64", [str(a) for a in args])
    return subprocess.run(cmd, shell=True, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)


def test_outputs_match_python_runtime_and_eager(bundle, tiny, tmp_path):
    from program.pte import load_forward
    import torch

    pte, model = tiny
    examples = write_token_inputs(tmp_path / "in.bin", 6)
    p = run_native(bundle, "--program", pte, "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--outputs", tmp_path / "out.bin", "--warmup", 1, "--iterations", 3, "--threads", 1)
    assert p.returncode == 0, p.stderr
    native = [ex[0] for ex in read_tensors(tmp_path / "out.bin")]
    method = load_forward(pte)
    python = [method.execute([torch.from_numpy(ex[0])])[0].numpy() for ex in examples]
    eager = eager_outputs(model, examples)
    assert len(native) == 6 and native[0].shape == (1, 3) and native[0].dtype == np.float32
    for n, py, ea in zip(native, python, eager):
        np.testing.assert_allclose(n, py, atol=1e-5, rtol=0)
        np.testing.assert_allclose(n, ea, atol=1e-5, rtol=0)
    assert not np.allclose(native[0], native[1]), "different inputs must give different logits"


def test_result_json_fields(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 4)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 2, "--iterations", 7, "--threads", 1, "--affinity", FIRST_CPU)
    assert p.returncode == 0, p.stderr
    raw = RawResult.from_json((tmp_path / "r.json").read_text())
    assert raw.runner == "native" and raw.num_examples == 4 and raw.threads == 1
    assert len(raw.latencies_ms) == 7 and all(x > 0 for x in raw.latencies_ms)
    assert raw.load_ms > 0 and raw.first_inference_ms > 0
    assert 1000 < raw.peak_rss_kb < 200_000 and raw.peak_rss_method == "/proc/self/status VmHWM"
    assert raw.peak_rss_kb == raw.extra["vmhwm_kb"] and raw.extra["ru_maxrss_kb"] > 0
    assert raw.pss_kb is None or 0 < raw.pss_kb <= raw.peak_rss_kb
    assert raw.runner_version["executorch"] == "1.5.1" and raw.runner_version["abi"] == "x86_64"
    assert raw.extra["input_specs"] == [{"dtype": "int64", "shape": [1, 8]}]
    assert raw.extra["output_specs"] == [{"dtype": "float32", "shape": [1, 3]}]
    assert raw.extra["backends"] == ["XnnpackBackend"] and sum(raw.extra["planned_buffer_bytes"]) > 0
    assert raw.extra["backend_status"] == [{"backend": "XnnpackBackend", "status": "registered and initialised"}]
    assert raw.extra["affinity"] == FIRST_CPU and raw.extra["program_bytes"] == tiny[0].stat().st_size


def test_min_seconds_keeps_running_past_iterations(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 2)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 0, "--iterations", 3, "--min-seconds", 0.05, "--threads", 1)
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    # 0.05 s is ~30k runs of this ~1.5 us program: well under the 100k bound tested below
    assert r["timed_seconds"] >= 0.05 and len(r["latencies_ms"]) > 3 and r["iterations"] == len(r["latencies_ms"])
    assert r["min_seconds_cut_short"] is False


def damaged_programs(pte: Path, out: Path) -> dict[str, Path]:
    data = pte.read_bytes()
    rng = np.random.default_rng(0)
    flipped = bytearray(data)
    for pos in rng.integers(8, min(len(data), 2048), size=40):  # inside the flatbuffer header and tables
        flipped[pos] ^= 0xFF
    variants = {"empty": b"", "truncated": data[: len(data) // 3], "random": rng.bytes(len(data)),
                "bitflipped": bytes(flipped), "text": b"not a program\n"}
    paths = {}
    for name, blob in variants.items():
        paths[name] = out / f"{name}.pte"
        paths[name].write_bytes(blob)
    return paths


def test_damaged_programs_fail_cleanly(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 2)
    for name, bad in damaged_programs(tiny[0], tmp_path).items():
        result = tmp_path / f"{name}.json"
        p = run_native(bundle, "--program", bad, "--inputs", tmp_path / "in.bin", "--result", result,
                       "--warmup", 0, "--iterations", 1, timeout=30)
        assert p.returncode != 0, f"{name}: a damaged program must not succeed"
        assert "error" in p.stderr, name
        err = json.loads(result.read_text())["error"]
        assert str(bad) in err or "crashed" in err, f"{name}: {err}"


def test_missing_program_and_unknown_method(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 1)
    p = run_native(bundle, "--program", tmp_path / "nope.pte", "--inputs", tmp_path / "in.bin",
                   "--result", tmp_path / "r.json")
    assert p.returncode != 0 and "nope.pte" in json.loads((tmp_path / "r.json").read_text())["error"]
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--method", "backward")
    assert p.returncode != 0 and "no method 'backward'" in json.loads((tmp_path / "r.json").read_text())["error"]


@pytest.mark.parametrize("case", ["wrong_dtype", "wrong_shape", "two_tensors", "truncated", "not_a_tensor_file",
                                  "missing"])
def test_wrong_inputs_file_names_the_problem(bundle, tiny, tmp_path, case):
    f = tmp_path / "in.bin"
    if case == "wrong_dtype":
        write_tensors(f, [[np.zeros((1, 8), dtype=np.int32)]])
        expect = "expects int64[1,8]"
    elif case == "wrong_shape":
        write_tensors(f, [[np.zeros((1, 16), dtype=np.int64)]])
        expect = "expects int64[1,8]"
    elif case == "two_tensors":
        write_tensors(f, [[np.zeros((1, 8), dtype=np.int64)] * 2])
        expect = "has 2 tensors per example"
    elif case == "truncated":
        write_token_inputs(f, 3)
        f.write_bytes(f.read_bytes()[:-5])
        expect = "truncated"
    elif case == "not_a_tensor_file":
        f.write_bytes(b"\x00" * 100)
        expect = "bad magic"
    else:
        expect = "cannot open inputs file"
    p = run_native(bundle, "--program", tiny[0], "--inputs", f, "--result", tmp_path / "r.json")
    assert p.returncode == 1
    err = json.loads((tmp_path / "r.json").read_text())["error"]
    assert expect in err and str(f) in err, err


@pytest.mark.parametrize("flags,expect", [(["--iterations", "-1"], "--iterations"), (["--threads", "0"], "--threads"),
                                          (["--affinity", "3-1"], "--affinity"), (["--bogus", "1"], "--bogus"),
                                          (["--affinity", "1000"], "sched_setaffinity")])
def test_bad_flags(bundle, tiny, tmp_path, flags, expect):
    write_token_inputs(tmp_path / "in.bin", 1)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   *flags)
    assert p.returncode == 1 and expect in p.stderr


def test_threads_flag_sets_the_pool(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 1)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--threads", 2, "--iterations", 2, "--warmup", 0)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "r.json").read_text())["threads"] == 2


def test_etdump_is_written(bundle, tiny, tmp_path):
    write_token_inputs(tmp_path / "in.bin", 1)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--iterations", 2, "--warmup", 0, "--etdump", tmp_path / "d.etdp")
    assert p.returncode == 0, p.stderr
    size = os.path.getsize(tmp_path / "d.etdp")
    assert size > 0 and json.loads((tmp_path / "r.json").read_text())["etdump_bytes"] == size


def test_runtime_error_reaches_the_result(bundle, tiny, tmp_path):
    """A token id past the vocabulary: the error must carry the runtime's own reason, not just InvalidArgument."""
    write_tensors(tmp_path / "in.bin", [[np.full((1, 8), 1000, dtype=np.int64)]])
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json")
    assert p.returncode == 1
    err = json.loads((tmp_path / "r.json").read_text())["error"]
    assert "first inference failed" in err and "1000 >= weight.size(0) 64" in err, err


def test_int8_program_matches_the_python_runtime(bundle, tmp_path):
    from program.pte import load_forward
    import torch

    pte, model = cached_tiny_program(seq_len=8, int8=True)
    examples = write_token_inputs(tmp_path / "in.bin", 6)
    p = run_native(bundle, "--program", pte, "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--outputs", tmp_path / "out.bin", "--warmup", 0, "--iterations", 1)
    assert p.returncode == 0, p.stderr
    method = load_forward(pte)
    for ex, out in zip(examples, read_tensors(tmp_path / "out.bin")):
        np.testing.assert_allclose(out[0], method.execute([torch.from_numpy(ex[0])])[0].numpy(), atol=1e-5, rtol=0)
    # int8 is close to, not equal to, fp32 eager: the error stays within a few quantization steps
    err = max(np.abs(o[0] - e).max() for o, e in zip(read_tensors(tmp_path / "out.bin"), eager_outputs(model, examples)))
    assert err < 0.1


def test_progress_lines_twice_a_second_on_stderr(bundle, tiny, tmp_path):
    from device_runners.base import parse_progress

    write_token_inputs(tmp_path / "in.bin", 2)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 0, "--iterations", 5, "--min-seconds", 1.6, "--threads", 1)
    assert p.returncode == 0, p.stderr
    lines = [parse_progress(ln) for ln in p.stderr.splitlines()]
    timing = [ln for ln in lines if ln and ln.get("stage") == "timing" and "done" in ln]
    elapsed = timing[-1]["elapsed_s"]  # the time floor holds on any CPU, however fast (no iteration cap cuts it)
    assert elapsed >= 1.6 and 3 <= len(timing) <= int(elapsed / 0.5) + 2  # start, at most every 0.5 s, end
    gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(timing[1:-2], timing[2:-1])]
    assert all(g >= 0.45 for g in gaps), gaps  # twice a second at most (a loaded core may space them wider)
    assert [t["done"] for t in timing] == sorted(t["done"] for t in timing) and timing[-1]["done"] >= 5
    assert timing[-1]["min_seconds"] == 1.6 and timing[-1]["target"] == 5
    assert {"stage": "loading program"} in lines  # each stage as it begins


def test_a_long_time_floor_thins_the_samples_and_still_lasts_its_floor(bundle, tiny, tmp_path):
    """--min-seconds is honoured however fast the CPU: past --max-samples the list keeps every other sample, then
    every 2nd (4th, ...) run, so it stays bounded and in order. A tiny program makes far more than 64 runs in 1 s."""
    write_token_inputs(tmp_path / "in.bin", 2)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 0, "--iterations", 5, "--min-seconds", 1, "--threads", 1, "--max-samples", 64)
    assert p.returncode == 0, p.stderr
    raw = json.loads((tmp_path / "r.json").read_text())
    assert raw["timed_seconds"] >= 1 and raw["min_seconds_cut_short"] is False
    stride, kept = raw["sample_stride"], len(raw["latencies_ms"])
    assert stride >= 2 and stride & (stride - 1) == 0  # a power of two
    assert raw["iterations"] == kept and 32 <= kept < 64 and kept >= 5
    assert (raw["timed_runs"] - 1) // stride + 1 == kept  # runs 0, stride, 2*stride, ... were kept
    assert raw["timed_runs"] > 64


def test_warmup_and_timing_floors_hold_and_max_seconds_caps(bundle, tiny, tmp_path):
    """Both loops have an iteration floor and a time floor; --max-seconds ends the timed loop even short of
    --iterations and says so."""
    from device_runners.base import parse_progress

    write_token_inputs(tmp_path / "in.bin", 2)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 1, "--warmup-seconds", 0.6, "--iterations", 1, "--min-seconds", 0.3, "--threads", 1)
    assert p.returncode == 0, p.stderr
    warm = [d for d in map(parse_progress, p.stderr.splitlines()) if d and d.get("stage") == "warming up" and "done" in d]
    assert warm[-1]["elapsed_s"] >= 0.6 and warm[-1]["done"] > 1
    raw = json.loads((tmp_path / "r.json").read_text())
    assert raw["timed_seconds"] >= 0.3 and raw["max_seconds_reached"] is False
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 0, "--iterations", 100_000_000, "--max-seconds", 0.3, "--threads", 1)
    assert p.returncode == 0, p.stderr
    raw = json.loads((tmp_path / "r.json").read_text())
    assert raw["max_seconds_reached"] is True and raw["timed_seconds"] >= 0.3
    assert 0 < raw["timed_runs"] < 100_000_000
    for flag in ("--warmup-seconds", "--max-seconds"):
        bad = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result",
                         tmp_path / "r.json", flag, "-1")
        assert bad.returncode != 0 and f"bad value for {flag}: -1" in bad.stderr + bad.stdout


def test_sigterm_while_timing_keeps_the_samples_so_far(bundle, tiny, tmp_path):
    import signal
    import time

    write_token_inputs(tmp_path / "in.bin", 2)
    cmd = bundle_command(str(bundle), "x86_64", [str(a) for a in (
        "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json", "--outputs",
        tmp_path / "out.bin", "--warmup", 0, "--iterations", 10_000_000, "--min-seconds", 60, "--threads", 1)])
    proc = subprocess.Popen(["sh", "-c", "exec " + cmd], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if '"stage": "timing", "done"' in line:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.stderr.read()
    assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    raw = json.loads((tmp_path / "r.json").read_text())
    assert raw["interrupted"] == "SIGTERM" and raw["partial"] is True and "error" not in raw
    assert len(raw["latencies_ms"]) == raw["iterations"] > 0
    assert not (tmp_path / "out.bin").exists()  # the outputs pass is skipped: it would only delay the exit


def test_sigint_before_timing_leaves_an_interrupted_error(bundle, tiny, tmp_path):
    import signal

    write_token_inputs(tmp_path / "in.bin", 2)
    cmd = bundle_command(str(bundle), "x86_64", [str(a) for a in (
        "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
        "--warmup", 10_000_000, "--threads", 1)])
    proc = subprocess.Popen(["sh", "-c", "exec " + cmd], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if '"stage": "warming up"' in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.stderr.read()
    assert proc.wait(timeout=5) == 128 + signal.SIGINT
    raw = json.loads((tmp_path / "r.json").read_text())
    assert raw["interrupted"] == "SIGINT" and raw["latencies_ms"] == []
    assert raw["error"] == "interrupted by SIGINT while warming up"
