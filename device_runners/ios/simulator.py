"""The `ios-simulator` transport: the same app on the iOS Simulator of a Mac, driven with `xcrun simctl`.

The simulator's app container is a folder on the Mac, so files are plain copies; the launch is
`simctl launch --console-pty`, which returns when the app exits. Timings are the Mac's CPU: flagged emulated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from device_runners.base import TransportError
from device_runners.ios.app import BUNDLE_ID, AppTransport


class SimulatorTransport(AppTransport):
    kind = "ios-simulator"
    emulated = True

    def __init__(self, device: str = "booted", app: str | Path | None = None):
        self.serial = device
        self.app = Path(app) if app else None
        self._documents: Path | None = None

    def _simctl(self, *args: str, timeout: float = 120) -> str:
        try:
            proc = subprocess.run(["xcrun", "simctl", *args], capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise TransportError("no xcrun: the iOS Simulator needs macOS with Xcode") from None
        if proc.returncode != 0:
            raise TransportError(f"xcrun simctl {args[0]} failed: {(proc.stderr or proc.stdout).strip()[:300]}")
        return proc.stdout

    def _ready(self) -> None:
        if self._documents is not None:
            return
        if shutil.which("xcrun") is None:
            raise TransportError("no xcrun: the iOS Simulator needs macOS with Xcode")
        if self.app is not None:
            self._simctl("install", self.serial, str(self.app), timeout=600)
        try:
            data = self._simctl("get_app_container", self.serial, BUNDLE_ID, "data").strip()
        except TransportError as e:
            raise TransportError(f"the harness app ({BUNDLE_ID}) is not installed on simulator {self.serial}: "
                                 f"set HARNESS_IOS_APP=Harness.app ({e})") from None
        self._documents = Path(data) / "Documents"
        self._documents.mkdir(parents=True, exist_ok=True)

    def _path(self, rel: str) -> Path:
        return self._documents / rel.lstrip("/")

    def _makedirs(self, path: str) -> None:
        self._path(path).mkdir(parents=True, exist_ok=True)

    def _is_file(self, path: str) -> bool:
        return self._path(path).is_file()

    def _rm(self, path: str) -> None:
        p = self._path(path)
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def _read(self, path: str) -> bytes | None:
        return self._path(path).read_bytes()

    def push(self, local: Path, remote: str) -> None:
        self._ready()
        dest = self._path(remote)
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if Path(local).is_dir() else shutil.copyfile)(local, dest)

    def pull(self, remote: str, local: Path) -> None:
        self._ready()
        if not self._is_file(remote):
            raise TransportError(f"{remote}: no such file in the app's Documents on simulator {self.serial}")
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(remote), local)

    def _launch(self, args: list[str], timeout: float | None, on_stderr) -> None:
        cmd = ["xcrun", "simctl", "launch", "--console-pty", "--terminate-running-process", self.serial, BUNDLE_ID,
               *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._terminate(proc)
            raise TimeoutError(f"the app was still running after {timeout:g} s on simulator {self.serial}: "
                               "terminated it") from None
        except KeyboardInterrupt:
            self._terminate(proc)
            raise
        for line in (out or "").splitlines():
            if on_stderr:
                on_stderr(line)

    def _terminate(self, proc: subprocess.Popen) -> None:
        subprocess.run(["xcrun", "simctl", "terminate", self.serial, BUNDLE_ID], capture_output=True, timeout=30)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def install(self) -> str:
        """Install self.app (the simulator build's .app); its CFBundleVersion."""
        self._ready()
        try:
            import plistlib
            return str(plistlib.loads((Path(self.app) / "Info.plist").read_bytes()).get("CFBundleVersion", "?"))
        except (OSError, ValueError, TypeError):
            return "?"

    def check(self) -> str:
        self._ready()
        return f"{self.info()['model']} ({self.info()['os']}), app installed"

    def info(self) -> dict[str, Any]:
        listing = json.loads(self._simctl("list", "devices", "--json"))
        for runtime, devices in (listing.get("devices") or {}).items():
            for d in devices:
                if d.get("udid") == self.serial or (self.serial == "booted" and d.get("state") == "Booted"):
                    os_name = runtime.rsplit(".", 1)[-1].replace("iOS-", "iOS ").replace("-", ".")
                    return {"model": f"iOS Simulator ({d.get('name')})", "os": os_name, "serial": d.get("udid"),
                            "abi": "arm64-v8a", "emulated": True}
        raise TransportError(f"no simulator {self.serial!r} (booted?): xcrun simctl boot DEVICE")
