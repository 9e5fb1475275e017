"""An emulated ARM64 device: a sandbox directory stands in for its filesystem, its programs run under
`qemu-aarch64 -cpu cortex-a76`. Timings from it are functional only (hundreds of times slower than hardware)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from device_runners.launch import QEMU, QEMU_CPU, bundle_command
from device_runners.local import LocalTransport
from common.errors import DeviceError


class QemuTransport(LocalTransport):
    kind = "qemu"
    emulated = True
    abi = "arm64-v8a"
    qemu = True  # how launch.bundle_command must start programs here

    def __init__(self, sandbox: Path | None = None, sysroot: str | None = None):
        """sandbox: the device's files (a temporary directory, deleted on close, when None).
        sysroot: run the runner against this arm64 glibc (`-L`) instead of the bundle's own (self-contained)."""
        if shutil.which(QEMU) is None:
            raise DeviceError(f"{QEMU} not found for the emulated arm64 device: install Debian package qemu-user")
        self._own_sandbox = sandbox is None
        self.sandbox = Path(tempfile.mkdtemp(prefix="harness-qemu-")) if sandbox is None else Path(sandbox)
        self.sandbox.mkdir(parents=True, exist_ok=True)
        self.sysroot = sysroot
        super().__init__(workdir=str((self.sandbox / "harness").resolve()))

    def runner_command(self, bundle_dir: str, args: list[str]) -> str:
        """The command line that starts an arm64 bundle pushed to bundle_dir on this device."""
        return bundle_command(bundle_dir, self.abi, args, qemu=True, sysroot=self.sysroot)

    def info(self) -> dict[str, Any]:
        host = super().info()
        version = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.splitlines()
        info = {k: host[k] for k in ("kernel", "hostname", "os", "mem_total_kb", "mem_available_kb", "loadavg",
                                     "temperatures_c") if k in host}
        info.update(
            transport=self.kind, emulated=True, abi=self.abi, machine="aarch64",
            model=f"qemu-aarch64 -cpu {QEMU_CPU} on {host.get('hostname', 'host')}",
            cpu=f"{QEMU_CPU} (qemu)", cores=host.get("cores"), governor=None, freq_khz={},
            host_cpu=host.get("cpu"), host_governor=host.get("governor"), host_freq_khz=host.get("freq_khz"),
            qemu=version[0] if version else QEMU, sysroot=self.sysroot or "none (self-contained bundle)",
        )
        return info

    def close(self) -> None:
        if self._own_sandbox:
            shutil.rmtree(self.sandbox, ignore_errors=True)
