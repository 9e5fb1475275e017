"""Nobody else's code runs as you: the work folder on a device is the user's own (0700, refused when another user
can write it), a runner bundle there is trusted only when its files hash to the local copy's, and a push replaces
a symlink at its destination instead of writing through it (docs/faults.md, "Security")."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from device_runners.build import build_bundle
from device_runners.bundle_install import bundle_hashes
from device_runners.local import LocalTransport
from device_runners.workdir import UnsafeWorkdir, ensure_local, host_default, prepare_by_shell

NOBODY = 65534
TROJAN = "#!/bin/sh\nid > {pwned}\nexit 1\n"


def _harness(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _profile(tmp_path: Path, workdir: Path) -> Path:
    f = tmp_path / "devices.toml"
    f.write_text(f'[mine]\nabi = "x86_64"\ntransport = "local"\nthreads = 1\nworkdir = "{workdir}"\n')
    return f


def _plant(workdir: Path, pwned: Path, owner: int | None) -> Path:
    """The issue's reproduction: a bundle folder named by the public content hash, a trojan loader, .complete."""
    bundle = build_bundle("x86_64")
    planted = workdir / "bundles" / bundle.name
    for sub in ("bin", "lib"):
        (planted / sub).mkdir(parents=True, exist_ok=True)
    for rel in bundle_hashes(bundle):
        (planted / rel).write_text(TROJAN.format(pwned=pwned))
        (planted / rel).chmod(0o755)
    (planted / ".complete").touch()
    (workdir / "runs").mkdir(exist_ok=True)
    if owner is not None:
        for p in [workdir, *workdir.rglob("*")]:
            os.lchown(p, owner, owner)
        workdir.chmod(0o1777)
        (workdir / "runs").chmod(0o1777)
    return planted


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="planting a folder as another user needs root (CI is root)")


@needs_root
def test_a_bundle_planted_by_another_user_never_runs(tiny, tmp_path):
    shared, pwned = tmp_path / "shared" / "harness", tmp_path / "PWNED"
    shared.parent.mkdir()
    shared.parent.chmod(0o1777)
    shared.mkdir()
    _plant(shared, pwned, owner=NOBODY)
    res = _harness("--results", tmp_path / "r", "run", "--program", tiny[0], "--device", "mine",
                   "--devices-file", _profile(tmp_path, shared), "--iterations", 3, "--warmup", 0)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and f"{shared} belongs to uid {NOBODY}, not to you" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not pwned.exists()
    assert not (tmp_path / "r" / "runs.sqlite").exists() or "failed" not in _harness(
        "--results", tmp_path / "r", "runs", "list").stdout  # refused at set-up: nothing stored


def test_a_folder_of_yours_that_others_can_write_is_refused(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    with pytest.raises(UnsafeWorkdir, match=r"writable by others \(mode 777\)"):
        ensure_local(str(d))
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeWorkdir, match="is a symbolic link"):
        ensure_local(str(link))
    assert not (tmp_path / "elsewhere").exists()


def test_a_changed_bundle_in_your_own_folder_is_replaced_before_it_runs(tiny, tmp_path):
    mine, pwned = tmp_path / "mine", tmp_path / "PWNED"
    mine.mkdir(mode=0o700)
    planted = _plant(mine, pwned, owner=None)
    res = _harness("--results", tmp_path / "r", "run", "--program", tiny[0], "--device", "mine",
                   "--devices-file", _profile(tmp_path, mine), "--iterations", 3, "--warmup", 0)
    assert res.returncode == 0, res.stderr
    assert not pwned.exists()
    assert not (planted / ".complete").exists()  # the folder was replaced whole
    local = build_bundle("x86_64")
    assert bundle_hashes(planted) == bundle_hashes(local)


def test_the_default_work_folder_is_the_users_own(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    assert host_default() == str(tmp_path / "cache" / "work")
    t = LocalTransport()
    assert t.prepare_workdir() == str(tmp_path / "cache" / "work")
    assert stat.S_IMODE(os.stat(tmp_path / "cache" / "work").st_mode) == 0o700
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert host_default() == str(runtime / "harness")
    runtime.chmod(0o777)  # a runtime folder others can write is not used
    assert host_default() == str(tmp_path / "cache" / "work")


def test_the_devices_own_shell_checks_the_folder_too(tmp_path):
    """The check a phone or a board runs (mkdir under umask 077, `id -u`, `ls -ldn`), through a real shell."""
    t = LocalTransport(str(tmp_path / "dev" / "harness"))
    assert prepare_by_shell(t) == str(tmp_path / "dev" / "harness")
    assert stat.S_IMODE(os.stat(tmp_path / "dev" / "harness").st_mode) == 0o700
    (tmp_path / "dev" / "harness").chmod(0o757)
    with pytest.raises(UnsafeWorkdir, match="writable by others"):
        prepare_by_shell(t)
    if os.geteuid() == 0:
        (tmp_path / "dev" / "harness").chmod(0o700)
        os.chown(tmp_path / "dev" / "harness", NOBODY, NOBODY)
        with pytest.raises(UnsafeWorkdir, match=f"belongs to uid {NOBODY}"):
            prepare_by_shell(t)


def test_a_push_replaces_a_symlink_at_its_destination(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    dest = tmp_path / "work" / "program.pte"
    dest.parent.mkdir()
    dest.symlink_to(victim)
    src = tmp_path / "src.pte"
    src.write_bytes(b"program")
    LocalTransport(str(tmp_path / "work")).push(src, str(dest))
    assert victim.read_text() == "precious"
    assert not dest.is_symlink() and dest.read_bytes() == b"program"
    assert [p.name for p in dest.parent.iterdir()] == ["program.pte"]  # no temporary file left


def test_run_folders_a_killed_harness_left_are_swept_by_the_next_run(tiny, tmp_path):
    from harness.run.device_folders import run_folder_prefix

    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no process has any more
    left = work / "runs" / f"{run_folder_prefix(dead.pid)}0123456789ab"
    alive = work / "runs" / f"{run_folder_prefix(os.getppid())}0123456789ab"  # a live harness's run
    other = work / "runs" / "h00000000-p1-0123456789ab"  # another host's
    for d in (left, alive, other):
        d.mkdir(parents=True)
        (d / "program.pte").write_bytes(b"x" * 1000)
    res = _harness("--results", tmp_path / "r", "run", "--program", tiny[0], "--device", "mine",
                   "--devices-file", _profile(tmp_path, work), "--iterations", 3, "--warmup", 0)
    assert res.returncode == 0, res.stderr
    assert not left.exists() and alive.exists() and other.exists()
    assert sorted(p.name for p in (work / "runs").iterdir()) == sorted([alive.name, other.name])


class _ShellOnly(LocalTransport):
    """The same machine asked as a phone or a board is: through find and sha256sum in its shell."""
    local_folder = None


@pytest.mark.parametrize("change", ["none", "changed", "extra", "missing", "symlink"])
def test_the_bundle_check_in_process_answers_as_the_devices_shell_does(tmp_path, change):
    from device_runners.bundle_install import remote_hashes

    folder = tmp_path / "bundle"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "runner").write_bytes(b"\x7fELF runner")
    (folder / "lib").mkdir()
    (folder / "lib" / "libx.so").write_bytes(b"library")
    names = ["bin/runner", "lib/libx.so"]
    if change == "changed":
        (folder / "lib" / "libx.so").write_bytes(b"trojan")
    elif change == "extra":
        (folder / "lib" / "libevil.so").write_bytes(b"preloaded")
    elif change == "missing":
        (folder / "bin" / "runner").unlink()
    elif change == "symlink":
        (tmp_path / "elsewhere").write_bytes(b"library")
        (folder / "lib" / "libx.so").unlink()
        (folder / "lib" / "libx.so").symlink_to(tmp_path / "elsewhere")
    here = remote_hashes(LocalTransport(str(tmp_path)), str(folder), names)
    shell = remote_hashes(_ShellOnly(str(tmp_path)), str(folder), names)
    if change == "symlink":  # the shell hashes through a symlink; in-process a symlink is foreign: refused
        assert here is None and shell is not None
    else:
        assert here == shell
    assert (here is not None) == (change in ("none", "changed"))
    if change == "changed":
        import hashlib

        assert here["lib/libx.so"] == hashlib.sha256(b"trojan").hexdigest()  # so it differs from the local copy's
