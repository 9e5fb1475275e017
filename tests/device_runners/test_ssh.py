"""The ssh transport against a real sshd on 127.0.0.1 (the "board" is this machine)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from device_runners.base import TransportError
from device_runners.remote_shell import RemoteFileMissing
from device_runners.ssh import SshTransport, parse_address
from tests.support.sshd_fixture import Sshd, free_port, procs_with, require_sshd, when_running, write_key


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    require_sshd()
    with Sshd(tmp_path_factory.mktemp("sshd")) as s:
        yield s


@pytest.fixture
def board(sshd, tmp_path):
    t = SshTransport(sshd.address, key_file=sshd.key, workdir=str(tmp_path / "work"), connect_timeout=10)
    yield t
    t.close()


def test_address_parsing():
    assert parse_address("pi@raspberrypi.local") == ("pi", "raspberrypi.local", 22)
    assert parse_address("pi@10.0.0.2:2222") == ("pi", "10.0.0.2", 2222)
    assert parse_address("me@[::1]:2200") == ("me", "::1", 2200)
    with pytest.raises(TransportError, match="not user@host"):
        parse_address("pi@host:port")


def test_push_run_pull_round_trip(board, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "bin").mkdir(parents=True)
    (bundle / "lib").mkdir()
    tool = bundle / "bin" / "tool"
    tool.write_text('#!/bin/sh\necho "args: $*"; echo "to stderr" >&2; cat "$(dirname "$0")/../lib/data.txt"; exit 3\n')
    tool.chmod(0o755)
    (bundle / "lib" / "data.txt").write_text("payload\n")
    remote = f"{board.workdir()}/deep/bundle"  # parents do not exist yet
    board.push(bundle, remote)
    rc, out, err = board.shell(f"{remote}/bin/tool a 'b c'")
    assert (rc, out, err) == (3, "args: a b c\npayload\n", "to stderr\n")
    board.shell(f"echo result > {remote}/out.json")
    board.pull(f"{remote}/out.json", tmp_path / "back" / "out.json")
    assert (tmp_path / "back" / "out.json").read_text() == "result\n"
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3_000_000))
    board.push(blob, f"{remote}/blob.bin")
    board.pull(f"{remote}/blob.bin", tmp_path / "blob.back")
    assert (tmp_path / "blob.back").read_bytes() == blob.read_bytes()
    rc, out, _ = board.shell(f"od -An -v -tx1 {remote}/blob.bin | wc -l")  # a large stdout through the channel
    assert (rc, int(out)) == (0, 187_500)


def test_missing_remote_file_is_file_not_found(board, tmp_path):
    with pytest.raises(RemoteFileMissing, match="nothing.json: no such file on"):
        board.pull(f"{board.workdir()}/nothing.json", tmp_path / "x")


def test_command_killed_by_signal_reports_128_plus_signal(board):
    rc, _, _ = board.shell("sh -c 'kill -SEGV $$'")  # like a runner that segfaults as the last command
    assert rc == 139


def test_refused_port_names_the_address():
    addr = f"pi@127.0.0.1:{free_port()}"
    with pytest.raises(TransportError, match=rf"ssh {addr}: connection refused"):
        SshTransport(addr, connect_timeout=5).shell("true")


def test_unknown_host_names_the_host():
    with pytest.raises(TransportError, match="unknown host no-such-board.invalid"):
        SshTransport("pi@no-such-board.invalid", connect_timeout=5).shell("true")


def test_auth_failure_names_user_and_key(sshd, tmp_path):
    stranger = tmp_path / "stranger_key"
    write_key(stranger)
    with pytest.raises(TransportError, match=rf"ssh {sshd.address}: authentication failed for user {sshd.user} "
                                             rf"\(key {stranger}\)"):
        SshTransport(sshd.address, key_file=stranger, connect_timeout=5).shell("true")


def test_timeout_kills_the_remote_command_and_its_children(board):
    marker = "sleep 86.4213"
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="still running after 2 s"):
        board.shell(f"{marker} & sh -c '{marker}'; wait", timeout=2)
    assert time.monotonic() - start < 86.4  # ended by the timeout, not by the commands' own 86 s
    deadline = time.monotonic() + 5
    while procs_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert procs_with(marker) == []
    assert board.shell("echo still usable") == (0, "still usable\n", "")


def test_sshd_killed_mid_command_is_a_transport_error(tmp_path):
    require_sshd()
    with Sshd(tmp_path / "sshd") as s:
        t = SshTransport(s.address, key_file=s.key, workdir=str(tmp_path / "w"))
        assert t.shell("echo up")[1] == "up\n"
        killer = when_running("sleep 60.0419", s.kill)  # sshd dies once the command runs on the board
        start = time.monotonic()
        with pytest.raises(TransportError, match=rf"ssh {s.address}: connection lost"):
            t.shell("sleep 60.0419", timeout=30)
        assert time.monotonic() - start < 30  # the lost connection was noticed, not waited out by the timeout
        killer.join()  # sshd is reaped: a reconnect can no longer slip into its listen backlog
        with pytest.raises(TransportError, match=rf"ssh {s.address}: (connection refused|cannot connect)"):
            t.shell("true")  # the board stays gone: reconnecting fails with a clear error


def test_cleanup_removes_scratch_and_refuses_paths_outside_the_workdir(board, tmp_path):
    run_dir = f"{board.workdir()}/runs/abc123"
    f = tmp_path / "inputs.bin"
    f.write_bytes(b"\0" * 1000)
    board.push(f, f"{run_dir}/inputs.bin")
    assert Path(run_dir, "inputs.bin").is_file()  # the board is this machine: check the real file system
    board.cleanup(run_dir)
    assert not Path(run_dir).exists()
    for bad in ("/", "/tmp", f"{board.workdir()}/../elsewhere", "relative/dir"):
        with pytest.raises(ValueError, match="outside the harness workdir"):
            board.cleanup(bad)


def test_info_is_the_devinfo_snapshot(board):
    info = board.info()
    assert info["transport"] == "ssh" and info["abi"] == "x86_64"
    assert info["cores"] == __import__("os").cpu_count()
    assert info["devinfo_complete"] is True
    assert info["mem_total_kb"] > 0


def test_address_of_a_closed_board_does_not_hang():
    # A listening socket that never answers the ssh banner: the connect timeout must bound the wait.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        timeout = 2
        start = time.monotonic()
        with pytest.raises(TransportError, match=rf"ssh pi@127.0.0.1:{port}"):
            SshTransport(f"pi@127.0.0.1:{port}", connect_timeout=timeout).shell("true")
        # bounded by the connect timeout (a few multiples of it: TCP connect, banner, auth), not left hanging
        assert time.monotonic() - start < 10 * timeout
