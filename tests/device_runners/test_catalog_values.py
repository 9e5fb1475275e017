"""A device profile's values are checked when the catalog is read: one line naming the file, the profile and the
field, never a traceback later in `run` or `devices --check`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _harness(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("body, expect", [
    ('abi = "arm64-v8a"\ntransport = "adb"\noptions = { adb_port = "abc" }',
     "[x] options.adb_port must be a whole number from 1 to 65535, got 'abc'"),
    ('abi = "x86_64"\ntransport = "local"\nworkdir = "-rf"',
     "[x] workdir must be an absolute path on the device"),
    ('abi = "x86_64"\ntransport = "local"\nworkdir = "relative/dir"',
     "[x] workdir must be an absolute path on the device"),
    ('abi = "x86_64"\ntransport = "local"\nthreads = 100000',
     "[x] threads must be a whole number from 1 to 256, got 100000"),
    ('abi = "x86_64"\ntransport = "local"\naffinity = "fast"',
     "[x] affinity 'fast' is neither a cluster of x"),
    ('abi = "x86_64"\ntransport = "local"\naffinity = "big"',
     "[x] affinity: device x has no big cluster"),
])
@pytest.mark.parametrize("command", ["devices", "run"])
def test_a_bad_profile_value_is_one_line_naming_the_file_and_field(tiny, tmp_path, body, expect, command):
    f = tmp_path / "lab.toml"
    f.write_text(f"[x]\n{body}\n")
    args = ["devices", "--check"] if command == "devices" else [
        "--results", tmp_path / "r", "run", "--program", tiny[0], "--device", "x"]
    res = _harness(*args, "--devices-file", f, env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("…")]
    assert len(lines) == 1 and str(f) in lines[0] and expect in lines[0], res.stderr
    assert "--affinity" not in lines[0] and "Traceback" not in res.stderr


def test_a_bad_adb_port_in_the_environment_is_one_line(tiny, tmp_path):
    res = _harness("--results", tmp_path / "r", "run", "--program", tiny[0], "--device", "pixel7", "--serial", "X",
                   env={"ANDROID_ADB_SERVER_PORT": "abc", "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "ANDROID_ADB_SERVER_PORT='abc' is not a port number" in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_devices_json_shows_what_a_run_will_use(tmp_path):
    import json

    f = tmp_path / "lab.toml"
    f.write_text('[board]\nabi = "arm64-v8a"\ntransport = "adb"\nclusters = { big = "4-7" }\naffinity = "big"\n'
                 'threads = 4\n')
    res = _harness("devices", "--format", "json", "--devices-file", f,
                   env={"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HARNESS_CACHE": str(tmp_path / "cache"),
                        "XDG_RUNTIME_DIR": ""})
    assert res.returncode == 0, res.stderr
    by = {d["name"]: d for d in json.loads(res.stdout)}
    assert by["board"]["workdir"] == "/data/local/tmp/harness"  # an adb profile without one: the default it uses
    assert by["board"]["threads"] == 4 and by["board"]["affinity_cpus"] == "4-7"
    assert by["host"]["workdir"] == str(tmp_path / "cache" / "work")  # per user, never /tmp/harness
