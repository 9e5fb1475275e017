"""The `ios` transport: an iPhone driven from Linux or macOS through pymobiledevice3 (usbmux and lockdown, the
iOS 17+ tunnel for developer services, installation_proxy, house_arrest/AFC, DVT process control, sysmontap).

The run's files go into the harness app's Documents folder (AFC); the runner invocation launches the app with the
same arguments (DVT process control) and waits for it to exit; sysmontap samples the app's physFootprint meanwhile
(iOS's own memory figure, recorded as such). pymobiledevice3 is asyncio: one event loop in a thread serves the
transport's blocking calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from device_runners.base import TransportError
from device_runners.ios import services
from device_runners.ios.app import BUNDLE_ID, AppTransport, check_ipa

# ProductType -> (marketing name, chip, cores); others are reported by their ProductType.
MODELS = {
    "iPhone15,4": ("iPhone 15", "A16 Bionic", 6), "iPhone15,5": ("iPhone 15 Plus", "A16 Bionic", 6),
    "iPhone16,1": ("iPhone 15 Pro", "A17 Pro", 6), "iPhone16,2": ("iPhone 15 Pro Max", "A17 Pro", 6),
    "iPhone17,3": ("iPhone 16", "A18", 6), "iPhone17,4": ("iPhone 16 Plus", "A18", 6),
    "iPhone17,1": ("iPhone 16 Pro", "A18 Pro", 6), "iPhone17,2": ("iPhone 16 Pro Max", "A18 Pro", 6),
}
AFC_NO_SPACE_LEFT = 18
SAMPLE_MS = 500
TUNNEL_FIX = "start the tunnel once as root: sudo python3 -m pymobiledevice3 remote tunneld"


class _Loop:
    """An asyncio loop in a daemon thread; run() blocks on one coroutine."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ios-transport")
        self.thread.start()

    def run(self, coro, timeout: float | None = None):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class IosTransport(AppTransport):
    kind = "ios"
    emulated = False

    def __init__(self, serial: str | None = None, app: str | Path | None = None, connect_timeout: float = 30.0):
        self.serial = serial
        self.app = Path(app) if app else None
        self.connect_timeout = connect_timeout
        self._svc = None
        self._loop: _Loop | None = None
        self._lockdown = self._afc = self._dvt_source = None
        self._values: dict[str, Any] = {}
        self._launched: dict[str, Any] = {}  # the last launch: its result path and physFootprint samples
        self._thermal: tuple[str | None, str | None] = (None, None)
        self.installed_version: str | None = None

    # -- connection -------------------------------------------------------------------------------------------
    def _ready(self, sweep: bool = True) -> None:
        if self._afc is not None:
            return
        self._svc = self._svc or services.load()
        self._loop = self._loop or _Loop()
        self._call(self._connect(sweep), self.connect_timeout, "connecting")

    def _call(self, coro, timeout: float | None, what: str):
        """Run a coroutine on the loop; pymobiledevice3's errors become TransportErrors naming the device."""
        ex = self._svc.exceptions
        who = f"iPhone {self.serial}" if self.serial else "iPhone"
        try:
            return self._loop.run(coro, timeout)
        except (TransportError, TimeoutError, KeyboardInterrupt):
            raise
        except ex.AfcException as e:
            if getattr(e, "status", None) == AFC_NO_SPACE_LEFT:
                raise TransportError(f"{who} is full ({e}): free some storage on it") from None
            raise TransportError(f"{who}: {what}: {e}") from None
        except (ex.ConnectionTerminatedError, ex.NoDeviceConnectedError, ex.DeviceNotFoundError,
                ConnectionError, EOFError) as e:
            raise TransportError(f"{who} went away while {what} (unplugged or locked?): {e or type(e).__name__}") \
                from None
        except (ex.PyMobileDevice3Exception, OSError) as e:
            raise TransportError(f"{who}: {what}: {type(e).__name__}: {e}") from None

    async def _connect(self, sweep: bool) -> None:
        svc, ex = self._svc, self._svc.exceptions
        try:
            attached = [d.serial for d in await svc.list_devices()]
        except ex.ConnectionFailedToUsbmuxdError:
            raise TransportError("usbmuxd is not running, so no iPhone can be seen: on Linux `apt-get install "
                                 "usbmuxd` (it starts when a phone is plugged in); on macOS it is part of the "
                                 "system") from None
        if self.serial and self.serial not in attached:
            raise TransportError(f"iPhone {self.serial} is not attached (attached: {', '.join(attached) or 'none'}): "
                                 "check the serial (UDID) and the cable")
        if not self.serial:
            if not attached:
                raise TransportError("no iPhone attached: connect it by USB and unlock it (usbmuxd sees none)")
            if len(attached) > 1:
                raise TransportError(f"several iPhones attached ({', '.join(attached)}): set the profile's serial")
            self.serial = attached[0]
        try:
            self._lockdown = await svc.create_using_usbmux(serial=self.serial, autopair=False)
        except (ex.NotPairedError, ex.PairingError, ex.NotTrustedError, ex.InvalidHostIDError) as e:
            raise TransportError(f"iPhone {self.serial} is not paired with this computer ({type(e).__name__}): "
                                 "unlock it, tap Trust, then run `pymobiledevice3 lockdown pair`") from None
        self._values = dict(self._lockdown.all_values)
        version = str(self._values.get("ProductVersion") or "")
        major = int(version.split(".")[0]) if version[:1].isdigit() else 0
        async with svc.MobileImageMounterService(self._lockdown) as mounter:
            if major >= 16 and not await mounter.query_developer_mode_status():
                raise TransportError(f"iPhone {self.serial}: Developer Mode is off: turn it on in Settings > "
                                     "Privacy & Security > Developer Mode (the phone restarts)")
            if not await mounter.is_image_mounted("Personalized" if major >= 17 else "Developer"):
                raise TransportError(f"iPhone {self.serial}: the developer disk image is not mounted: run "
                                     "`pymobiledevice3 mounter auto-mount`" + (f" ({TUNNEL_FIX} first)"
                                                                                if major >= 17 else ""))
        if major >= 17:  # developer services go through the tunnel (RemoteXPC) from iOS 17 on
            try:
                self._dvt_source = await svc.get_tunneld_device_by_udid(self.serial)
            except ex.TunneldConnectionError:
                self._dvt_source = None
            if self._dvt_source is None:
                raise TransportError(f"iPhone {self.serial} runs iOS {version}: its developer services need the "
                                     f"tunnel: {TUNNEL_FIX}")
        else:
            self._dvt_source = self._lockdown
        await self._ensure_app(version)
        self._afc = await svc.HouseArrestService.create(self._lockdown, BUNDLE_ID, documents_only=True)
        if sweep:  # runs of a session that died (unplugged, killed) leave their files: none can be running now
            await self._afc.rm(_afc_path("harness/runs"), force=True)

    async def _ensure_app(self, version: str) -> None:
        svc, ex = self._svc, self._svc.exceptions
        async with svc.InstallationProxyService(lockdown=self._lockdown) as proxy:
            apps = await proxy.get_apps(application_type="User", bundle_identifiers=[BUNDLE_ID])
            installed = (apps or {}).get(BUNDLE_ID)
            self.installed_version = str(installed.get("CFBundleVersion")) if installed else None
            if self.app is None:
                if installed is None:
                    raise TransportError(f"the harness app ({BUNDLE_ID}) is not installed on iPhone {self.serial}: "
                                         "build and sign it (docs/devices.md), then `harness devices install "
                                         "DEVICE --app Harness.ipa` or set HARNESS_IOS_APP=Harness.ipa")
                return
            if not self.app.is_file():
                raise TransportError(f"{self.app}: no such .ipa")
            ipa = check_ipa(self.app, "iPhoneOS", version)
            if installed is not None and self.installed_version == ipa["version"]:
                return
            try:
                await proxy.install_from_local(self.app)
            except ex.AppInstallError as e:
                raise TransportError(f"iPhone {self.serial} refused {self.app}: {e} (signed for this device? "
                                     "docs/devices.md)") from None
            self.installed_version = ipa["version"]

    def install(self) -> str:
        """Connect, install the app from self.app when its version differs; what is installed now."""
        self._ready(sweep=False)
        return self.installed_version or "?"

    def check(self) -> str:
        """Connect as a run would (nothing installed or removed): the device and app it finds, or TransportError."""
        self._ready(sweep=False)
        return f"{self.info()['model']} (iOS {self._values.get('ProductVersion')}), app {self.installed_version}"

    # -- files in Documents -----------------------------------------------------------------------------------
    def _makedirs(self, path: str) -> None:
        self._call(self._afc.makedirs(_afc_path(path)), 60, f"creating {path}")

    def _is_file(self, path: str) -> bool:
        async def go():
            p = _afc_path(path)
            return await self._afc.exists(p) and not await self._afc.isdir(p)
        return self._call(go(), 60, f"looking for {path}")

    def _rm(self, path: str) -> None:
        self._call(self._afc.rm(_afc_path(path), force=True), 60, f"removing {path}")

    def _read(self, path: str) -> bytes | None:
        return self._call(self._afc.get_file_contents(_afc_path(path)), 300, f"reading {path}")

    def push(self, local: Path, remote: str) -> None:
        self._ready()
        local = Path(local)
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for f in files:
            dest = remote if f == local else f"{remote.rstrip('/')}/{f.relative_to(local).as_posix()}"
            parent = dest.rsplit("/", 1)[0] if "/" in dest else ""
            if parent:
                self._makedirs(parent)
            self._call(self._afc.set_file_contents(_afc_path(dest), f.read_bytes()), None, f"pushing {f.name}")

    def pull(self, remote: str, local: Path) -> None:
        self._ready()
        data = self._read(remote)
        if remote == self._launched.get("result"):
            data = self._annotate(data)
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(local.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(local)

    def _annotate(self, data: bytes) -> bytes:
        """The app's result with the physFootprint sysmontap saw, and the thermal states the app read."""
        try:
            d = json.loads(data)
        except ValueError:
            return data
        if not isinstance(d, dict):
            return data
        self._thermal = (d.get("thermal_state_start"), d.get("thermal_state_end"))
        samples = self._launched.get("footprint") or []
        if samples:
            d["phys_footprint_kb"] = max(samples) // 1024
            d["phys_footprint_method"] = (f"physFootprint of the app process (iOS memory footprint, not RSS), "
                                          f"max of {len(samples)} sysmontap samples every {SAMPLE_MS} ms")
        elif self._launched.get("sampler_error"):
            d["phys_footprint_method"] = f"not sampled: {self._launched['sampler_error']}"
        return (json.dumps(d) + "\n").encode()

    # -- the app --------------------------------------------------------------------------------------------
    def _launch(self, args: list[str], timeout: float | None, on_stderr) -> None:
        result = args[args.index("--result") + 1] if "--result" in args else None
        self._launched = {"result": result, "footprint": [], "pid": None}
        try:
            self._call(self._run_app(args, timeout), None, "running the app")
        except KeyboardInterrupt:
            pid = self._launched.get("pid")
            if pid:  # SIGTERM: the core writes what it timed so far (partial), then SIGKILL if it lingers
                try:
                    self._call(self._stop_app(pid), 20, "stopping the app")
                except (TransportError, TimeoutError):
                    pass
            raise

    async def _run_app(self, args: list[str], timeout: float | None) -> None:
        svc = self._svc
        async with svc.DvtProvider(self._dvt_source) as dvt:
            async with svc.ProcessControl(dvt) as control:
                pid = await control.launch(BUNDLE_ID, arguments=list(args), kill_existing=True)
                self._launched["pid"] = pid
                sampler = asyncio.ensure_future(self._sample(dvt, pid))
                try:
                    deadline = time.monotonic() + timeout if timeout else None
                    async with svc.DeviceInfo(dvt) as device_info:
                        while await device_info.is_running_pid(pid):
                            if deadline and time.monotonic() > deadline:
                                await control.kill(pid)
                                raise TimeoutError(f"the app was still running after {timeout:g} s: killed it")
                            await asyncio.sleep(0.2)
                finally:
                    sampler.cancel()
                    await asyncio.gather(sampler, return_exceptions=True)

    async def _sample(self, dvt, pid: int) -> None:
        try:
            async with await self._svc.Sysmontap.create(dvt, interval=SAMPLE_MS) as tap:
                async for processes in tap.iter_processes():
                    for p in processes:
                        if p.get("pid") == pid and p.get("physFootprint") is not None:
                            self._launched["footprint"].append(int(p["physFootprint"]))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # memory sampling must never fail the run; the record says it is missing
            self._launched["sampler_error"] = f"{type(e).__name__}: {e}"

    async def _stop_app(self, pid: int) -> None:
        async with self._svc.DvtProvider(self._dvt_source) as dvt:
            async with self._svc.ProcessControl(dvt) as control:
                await control.signal(pid, signal.SIGTERM)
                async with self._svc.DeviceInfo(dvt) as device_info:
                    for _ in range(50):
                        if not await device_info.is_running_pid(pid):
                            return
                        await asyncio.sleep(0.1)
                await control.kill(pid)

    # -- device info --------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        self._ready(sweep=False)
        v = self._values
        product = v.get("ProductType")
        name, chip, cores = MODELS.get(product, (product, None, None))
        info = {"model": name, "product_type": product, "chip": chip, "cores": cores, "abi": "arm64-v8a",
                "os": f"iOS {v.get('ProductVersion')}", "os_build": v.get("BuildVersion"), "serial": self.serial,
                "device_name": v.get("DeviceName"), "app_version": self.installed_version,
                "thermal_state": self._thermal[1], "thermal_state_at_launch": self._thermal[0],
                "thermal_state_source": "ProcessInfo.thermalState read by the app at launch and exit"}
        try:
            battery = self._call(self._battery(), 20, "reading the battery") or {}
            if isinstance(battery.get("Temperature"), (int, float)):
                info["battery_temp_c"] = battery["Temperature"] / 100  # centi-degrees in IOPMPowerSource
        except TransportError as e:
            info["battery_error"] = str(e)
        return info

    async def _battery(self) -> dict | None:
        async with self._svc.DiagnosticsService(self._lockdown) as diagnostics:
            return await diagnostics.get_battery()

    def close(self) -> None:
        if self._loop is None:
            return
        async def shut():
            for s in (self._afc, self._lockdown):
                if s is not None:
                    try:
                        await s.close()
                    except Exception:
                        pass
        try:
            self._loop.run(shut(), 10)
        except BaseException:
            pass
        self._loop.close()
        self._loop = self._afc = self._lockdown = None


def _afc_path(rel: str) -> str:
    """A path relative to the app's Documents -> the AFC path house_arrest (VendDocuments) serves it at."""
    return "/Documents/" + rel.lstrip("/")


def app_from_env(profile_options: dict) -> str | None:
    """The .ipa to install when the installed app differs: the profile's `app` option, else $HARNESS_IOS_APP."""
    return profile_options.get("app") or os.environ.get("HARNESS_IOS_APP") or None
