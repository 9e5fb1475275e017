"""What the iOS transports share: the app's identity, the .ipa check, and the few shell commands measure.py sends,
answered with file operations in the app's Documents folder and an app launch for the runner invocation.

An iPhone has no shell. measure.py drives every transport through push/pull/shell; for an app transport the runner
command is `harness-app ARGS` (app_command), the same arguments as the Linux runner, with paths relative to the
app's Documents folder (the app changes into it before it runs the shared core, device_runners/native/runner_core).
"""

from __future__ import annotations

import json
import plistlib
import re
import shlex
import zipfile
from pathlib import Path
from typing import Callable

from device_runners.base import PROGRESS_MARK, Transport, TransportError

BUNDLE_ID = "org.harness.runner"  # device_runners/ios/app/project.yml
APP_COMMAND = "harness-app"
WORKDIR = "harness"  # under the app's Documents
NO_SHELL = 127


def app_exit(result_text: str | None) -> tuple[int, str]:
    """The app's exit as a shell would report it, read from the result it left (iOS reports no exit status to
    developer services): 0, 1 with the runner's error, 128+15 for a stop during timing, 137 without a result."""
    if result_text is None:
        return 137, ("the app exited without writing a result: it crashed before the runner started, or iOS "
                     "killed it (watchdog or memory limit); its crash log: pymobiledevice3 crash pull")
    try:
        d = json.loads(result_text)
    except ValueError:
        return 1, "the app wrote an unreadable result"
    if not isinstance(d, dict):
        return 1, "the app wrote an unreadable result"
    if d.get("partial"):
        return 128 + 15, f"stopped ({d.get('interrupted')})"
    if d.get("error"):
        return (139 if "crashed" in str(d["error"]) else 1), str(d["error"])
    return 0, ""


def read_ipa(path: Path) -> dict:
    """Bundle id, version, platforms and whether it is signed, from an .ipa (Payload/NAME.app/Info.plist)."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise TransportError(f"{path}: not an .ipa (a zip with Payload/NAME.app): {e}") from None
    with z:
        names = z.namelist()
        plists = [n for n in names if re.fullmatch(r"Payload/[^/]+\.app/Info\.plist", n)]
        if not plists:
            raise TransportError(f"{path}: not an .ipa: no Payload/NAME.app/Info.plist inside")
        app = plists[0][: -len("Info.plist")]
        try:
            info = plistlib.loads(z.read(plists[0]))
        except Exception as e:  # plistlib raises several types for a damaged file
            raise TransportError(f"{path}: unreadable Info.plist ({e})") from None
    return {"bundle_id": info.get("CFBundleIdentifier"), "version": str(info.get("CFBundleVersion", "")),
            "platforms": list(info.get("CFBundleSupportedPlatforms") or []),
            "minimum_os": str(info.get("MinimumOSVersion", "")),
            "signed": f"{app}_CodeSignature/CodeResources" in names,
            "provisioned": f"{app}embedded.mobileprovision" in names}


def check_ipa(path: Path, platform: str, os_version: str | None) -> dict:
    """read_ipa, refusing an .ipa that this device cannot install (wrong app, platform, iOS version, unsigned)."""
    info = read_ipa(path)
    if info["bundle_id"] != BUNDLE_ID:
        raise TransportError(f"{path}: bundle id {info['bundle_id']!r} is not the harness app's ({BUNDLE_ID})")
    if info["platforms"] and platform not in info["platforms"]:
        raise TransportError(f"{path} is built for {', '.join(info['platforms'])}, not {platform}: build it for "
                             "this target (docs/devices.md)")
    if platform == "iPhoneOS" and not (info["signed"] and info["provisioned"]):
        raise TransportError(f"{path} is not signed for a device (no _CodeSignature or embedded.mobileprovision): "
                             "sign it with your team (docs/devices.md)")
    if os_version and info["minimum_os"] and _ver(os_version) < _ver(info["minimum_os"]):
        raise TransportError(f"{path} needs iOS {info['minimum_os']}, the device runs {os_version}")
    return info


def _ver(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


class AppTransport(Transport):
    """The shell vocabulary over an app's Documents folder; subclasses provide the files and the launch."""

    launches_app = True  # measure.py: the runner is this app, started with app_command's arguments

    # -- what a subclass provides (paths relative to the app's Documents) --
    def _ready(self) -> None: ...
    def _makedirs(self, path: str) -> None: ...
    def _is_file(self, path: str) -> bool: ...
    def _rm(self, path: str) -> None: ...
    def _read(self, path: str) -> bytes | None: ...
    def _launch(self, args: list[str], timeout: float | None, on_stderr) -> None: ...

    def workdir(self) -> str:
        return WORKDIR

    def prepare_workdir(self) -> str:
        return WORKDIR  # inside the app's own sandbox: no other user's code can reach it

    def app_command(self, args: list[str]) -> str:
        return shlex.join([APP_COMMAND, *args])

    def shell(self, cmd: str, timeout: float | None = None,
              on_stderr: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        try:
            argv = shlex.split(cmd)
        except ValueError:
            argv = []
        if not argv or argv[0] not in ("echo", "mkdir", "test", "rm", APP_COMMAND):
            return NO_SHELL, "", f"{self.kind}: no shell on iOS (the harness app runs benchmarks only)\n"
        self._ready()
        head, rest = argv[0], argv[1:]
        if head == "echo":
            return 0, " ".join(rest) + "\n", ""
        if head == "mkdir" and rest[:1] == ["-p"]:
            for p in rest[1:]:
                self._makedirs(p)
            return 0, "", ""
        if head == "test" and len(rest) == 2 and rest[0] in ("-f", "-e"):
            return (0 if self._is_file(rest[1]) else 1), "", ""
        if head == "rm" and rest[:1] in (["-rf"], ["-f"], ["-r"]):
            for p in rest[1:]:
                self._rm(p)
            return 0, "", ""
        if head == APP_COMMAND:
            result = rest[rest.index("--result") + 1] if "--result" in rest else None
            if result:
                self._rm(result)  # a result left from before must never pass for this launch's
            if on_stderr:
                on_stderr(f'{PROGRESS_MARK} {{"stage": "running in the app ({BUNDLE_ID})"}}')
            self._launch(rest, timeout, on_stderr)
            rc, why = app_exit(self._read(result).decode(errors="replace") if result and self._is_file(result)
                               else None)
            return rc, "", (why + "\n") if why else ""
        return NO_SHELL, "", f"{self.kind}: `{cmd}` is not supported on iOS\n"
