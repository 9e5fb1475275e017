"""An iPhone at the pymobiledevice3 API boundary, for tests: the names device_runners/ios/services.py takes from
pymobiledevice3, with the same async calls, over an app container in a folder.

HARNESS_IOS_SERVICES=tests.support.ios_standin makes the iOS transport use it; HARNESS_IOS_STANDIN names the folder, which
holds device.json (the phones: serial, ProductType, ProductVersion, paired, developer_mode, ddi, tunnel, apps,
free_bytes, fault) and containers/BUNDLE/Documents. On launch the "app" is the host's native runner bundle, started
in Documents with the launch arguments, exactly as the app's main.mm does; it then adds the thermal states to
result.json as main.mm does. Faults: crash (SIGSEGV once running), jetsam (SIGKILL once running), hang (never
exits), unplug (the phone vanishes once the app runs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pymobiledevice3 import exceptions

_procs: dict[int, subprocess.Popen] = {}


def root() -> Path:
    return Path(os.environ["HARNESS_IOS_STANDIN"])


def _load() -> dict:
    return json.loads((root() / "device.json").read_text())


def _save(state: dict) -> None:
    (root() / "device.json").write_text(json.dumps(state, indent=1))


def _phone(serial: str) -> dict:
    for d in _load()["devices"]:
        if d["serial"] == serial:
            if d.get("unplugged"):
                raise exceptions.ConnectionTerminatedError("usbmux: device disconnected")
            return d
    raise exceptions.DeviceNotFoundError(serial)


def _update(serial: str, **changes) -> None:
    state = _load()
    for d in state["devices"]:
        if d["serial"] == serial:
            d.update(changes)
    _save(state)


def phone(serial: str = "00008120-001A2B3C4D5E6F70", **fields) -> dict:
    """A paired iPhone 15 on iOS 17.5 with the app installed; fields override."""
    d = {"serial": serial, "ProductType": "iPhone15,4", "ProductVersion": "17.5", "BuildVersion": "21F79",
         "DeviceName": "Test iPhone", "paired": True, "developer_mode": True, "ddi": True, "tunnel": True,
         "apps": {"org.harness.runner": {"CFBundleVersion": "1"}}, "free_bytes": 10 * 2**30, "fault": None}
    d.update(fields)
    return d


def make_device(folder: Path, serial: str = "00008120-001A2B3C4D5E6F70", **fields) -> Path:
    """A stand-in folder with one phone(serial, **fields) attached."""
    return make_devices(folder, [phone(serial, **fields)])


def make_devices(folder: Path, phones: list[dict]) -> Path:
    """A stand-in folder with these phones attached (all share one app container folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "device.json").write_text(json.dumps({"devices": phones}, indent=1))
    return folder


@dataclass
class MuxDevice:
    devid: int
    serial: str
    connection_type: str = "USB"


async def list_devices(usbmux_address=None) -> list[MuxDevice]:
    return [MuxDevice(i, d["serial"]) for i, d in enumerate(_load()["devices"]) if not d.get("unplugged")]


class Lockdown:
    def __init__(self, serial: str):
        d = _phone(serial)
        self.serial = serial
        self.all_values = {k: d[k] for k in ("ProductType", "ProductVersion", "BuildVersion", "DeviceName")}
        self.all_values["UniqueDeviceID"] = serial

    @property
    def product_version(self) -> str:
        return self.all_values["ProductVersion"]

    async def close(self) -> None:
        pass


async def create_using_usbmux(serial=None, autopair=True, **kwargs) -> Lockdown:
    if not _phone(serial)["paired"]:
        raise exceptions.NotPairedError()
    return Lockdown(serial)


async def get_tunneld_device_by_udid(udid, **kwargs):
    return Lockdown(udid) if _phone(udid)["tunnel"] else None


class _Service:
    def __init__(self, lockdown=None, *args, **kwargs):
        self.lockdown = lockdown
        self.serial = getattr(lockdown, "serial", None) or getattr(getattr(lockdown, "lockdown", None), "serial", None)

    async def __aenter__(self):
        _phone(self.serial)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        pass


class MobileImageMounterService(_Service):
    async def query_developer_mode_status(self) -> bool:
        return _phone(self.serial)["developer_mode"]

    async def is_image_mounted(self, image_type: str) -> bool:
        return _phone(self.serial)["ddi"]


class InstallationProxyService(_Service):
    async def get_apps(self, application_type="Any", calculate_sizes=False, bundle_identifiers=None, **kwargs):
        apps = _phone(self.serial)["apps"]
        return {k: {"CFBundleIdentifier": k, **v} for k, v in apps.items()
                if bundle_identifiers is None or k in bundle_identifiers}

    async def install_from_local(self, package_path, *args, **kwargs) -> None:
        """What installd checks: a device build, signed and provisioned."""
        with zipfile.ZipFile(package_path) as z:
            names = z.namelist()
            plist = next(n for n in names if n.endswith(".app/Info.plist"))
            import plistlib
            info = plistlib.loads(z.read(plist))
        app = plist[: -len("Info.plist")]
        if "iPhoneOS" not in info.get("CFBundleSupportedPlatforms", ["iPhoneOS"]):
            raise exceptions.AppInstallError("IncorrectArchitecture: not built for iPhoneOS")
        if f"{app}_CodeSignature/CodeResources" not in names:
            raise exceptions.AppInstallError("ApplicationVerificationFailed: no code signature")
        apps = _phone(self.serial)["apps"]
        apps[info["CFBundleIdentifier"]] = {"CFBundleVersion": str(info.get("CFBundleVersion"))}
        _update(self.serial, apps=apps)


class DiagnosticsService(_Service):
    async def get_battery(self):
        return {"Temperature": 3120, "CurrentCapacity": 80}


def _documents(bundle_id: str) -> Path:
    d = root() / "containers" / bundle_id / "Documents"
    d.mkdir(parents=True, exist_ok=True)
    return d


class HouseArrestService(_Service):
    """AFC rooted at the app's container; VendDocuments serves only /Documents."""

    @classmethod
    async def create(cls, lockdown, bundle_id: str, documents_only: bool = False) -> "HouseArrestService":
        if bundle_id not in _phone(lockdown.serial)["apps"]:
            raise exceptions.AppNotInstalledError(f"No app with bundle ID {bundle_id} is installed.")
        s = cls(lockdown)
        s.docs = _documents(bundle_id)
        return s

    def _p(self, path: str) -> Path:
        _phone(self.serial)
        if not (path + "/").startswith("/Documents/"):
            raise exceptions.AfcException(f"permission denied: {path}", 10, path)
        return self.docs / path[len("/Documents/"):]

    async def makedirs(self, path: str) -> None:
        self._p(path).mkdir(parents=True, exist_ok=True)

    async def exists(self, path: str) -> bool:
        return self._p(path).exists()

    async def isdir(self, path: str) -> bool:
        return self._p(path).is_dir()

    async def rm(self, path: str, match=None, force: bool = False) -> list[str]:
        p = self._p(path)
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
        elif not force:
            raise exceptions.AfcFileNotFoundError(f"no such file: {path}", 8, path)
        return []

    async def get_file_contents(self, path: str) -> bytes:
        p = self._p(path)
        if not p.is_file():
            raise exceptions.AfcFileNotFoundError(f"failed to open {path} for reading", 8, path)
        return p.read_bytes()

    async def set_file_contents(self, path: str, data: bytes, progress=None) -> None:
        p = self._p(path)
        used = sum(f.stat().st_size for f in self.docs.rglob("*") if f.is_file())
        if used + len(data) > _phone(self.serial)["free_bytes"]:
            raise exceptions.AfcException(f"failed to write {path}", 18, path)
        p.write_bytes(data)


class DvtProvider(_Service):
    pass


class ProcessControl(_Service):
    def __init__(self, dvt):
        super().__init__(dvt.lockdown)

    async def launch(self, bundle_id, arguments=None, kill_existing=True, start_suspended=False, environment=None,
                     extra_options=None) -> int:
        from device_runners.build import build_bundle
        from device_runners.launch import bundle_command

        fault = _phone(self.serial).get("fault")
        docs = _documents(bundle_id)
        if fault in ("crash", "jetsam") and "--inputs" in (arguments or []):
            # The inputs become a FIFO nobody writes: the runner blocks opening it, so the signal below always
            # lands while it runs (a tiny program would otherwise finish first).
            fifo = docs / arguments[arguments.index("--inputs") + 1]
            fifo.unlink(missing_ok=True)
            os.mkfifo(fifo)
        if fault == "hang":
            argv = ["sleep", "3600"]
        else:
            argv = shlex.split(bundle_command(str(build_bundle("x86_64")), "x86_64", list(arguments or [])))
        proc = subprocess.Popen(argv, cwd=docs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        proc.result = arguments[arguments.index("--result") + 1] if "--result" in (arguments or []) else None
        proc.docs = docs
        _procs[proc.pid] = proc
        if fault in ("crash", "jetsam"):
            await asyncio.to_thread(proc.stderr.readline)  # running: the core's handlers are installed
            proc.send_signal(signal.SIGSEGV if fault == "crash" else signal.SIGKILL)
        if fault == "unplug":
            _update(self.serial, unplugged=True)
        asyncio.get_running_loop().run_in_executor(None, proc.stderr.read)  # keep its pipe drained
        return proc.pid

    async def signal(self, pid: int, sig: int) -> None:
        _phone(self.serial)
        if pid in _procs and _procs[pid].poll() is None:
            _procs[pid].send_signal(sig)

    async def kill(self, pid: int) -> None:
        await self.signal(pid, signal.SIGKILL)


def _finished(proc: subprocess.Popen) -> None:
    """What main.mm does after the core returns: the thermal states go into result.json."""
    path = proc.docs / proc.result if proc.result else None
    if path is None or not path.is_file():
        return
    try:
        d = json.loads(path.read_text())
    except ValueError:
        return
    d.update(thermal_state_start="nominal", thermal_state_end="fair")
    path.write_text(json.dumps(d) + "\n")


class DeviceInfo(_Service):
    def __init__(self, dvt):
        super().__init__(dvt.lockdown)

    async def is_running_pid(self, pid: int) -> bool:
        proc = _procs.get(pid)
        try:
            _phone(self.serial)
        except exceptions.ConnectionTerminatedError:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the stand-in leaves no process behind
                proc.wait()
            raise
        if proc is None or proc.poll() is None:
            return proc is not None
        if not getattr(proc, "reported", False):
            proc.reported = True
            _finished(proc)
        return False


class Sysmontap(_Service):
    def __init__(self, dvt, interval: int):
        super().__init__(dvt.lockdown)
        self.interval = interval

    @classmethod
    async def create(cls, dvt, interval: int = 500) -> "Sysmontap":
        return cls(dvt, interval)

    async def iter_processes(self):
        while True:
            rows = []
            for pid, proc in list(_procs.items()):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                kb = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:")), None)
                if kb is not None and proc.poll() is None:
                    rows.append({"pid": pid, "name": "HarnessRunner", "physFootprint": kb * 1024})
            yield rows
            await asyncio.sleep(self.interval / 1000)
