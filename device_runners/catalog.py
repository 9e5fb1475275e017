"""The device catalog: built-in profiles from devices.toml, extended by the user's own file, and the transport
each profile reaches its device through."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tomllib
from pathlib import Path

from device_runners.base import DeviceProfile, Transport, TransportError
from common.errors import BadInput, HarnessError

BUILTIN = Path(__file__).with_name("devices.toml")
ABIS = ("x86_64", "arm64-v8a")
TRANSPORTS = ("local", "qemu", "ssh", "adb", "ios", "ios-simulator")
_FIELDS = {f.name: f for f in dataclasses.fields(DeviceProfile)}
MAX_THREADS = 256  # as --threads (harness/run/measure.py)
_INT_OPTIONS = {"adb_port": (1, 65535)}


def user_catalog_path() -> Path:
    """~/.config/harness/devices.toml (or under $XDG_CONFIG_HOME)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "harness" / "devices.toml"


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:  # its message ends with "(at line N, column M)"
        raise BadInput(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read device catalog: {e.strerror}") from None


def _check_fields(path: Path, name: str, table: object) -> dict:
    if not isinstance(table, dict):
        raise BadInput(f"{path}: [{name}] must be a table of profile fields, e.g. abi = \"arm64-v8a\"")
    unknown = sorted(set(table) - set(_FIELDS) - {"name"})
    if unknown:
        raise BadInput(f"{path}: [{name}] has unknown field(s) {', '.join(unknown)}; "
                       f"known: {', '.join(sorted(_FIELDS))}")
    for key in ("options", "clusters"):
        if key in table and not isinstance(table[key], dict):
            raise BadInput(f"{path}: [{name}] {key} must be a table")
    for cluster, mask in (table.get("clusters") or {}).items():
        if not isinstance(mask, str) or not _is_cpu_list(mask):
            raise BadInput(f"{path}: [{name}] clusters.{cluster} must be a CPU list like \"4-7\" or \"0,1\", "
                           f"got {mask!r}")
    if "threads" in table and (type(table["threads"]) is not int or not 1 <= table["threads"] <= MAX_THREADS):
        raise BadInput(f"{path}: [{name}] threads must be a whole number from 1 to {MAX_THREADS}, "
                       f"got {table['threads']!r}")
    for key in ("abi", "transport", "description", "affinity", "serial", "address", "address_env", "workdir",
                "model"):
        if key in table and not isinstance(table[key], str):
            raise BadInput(f"{path}: [{name}] {key} must be a string (in quotes), got {table[key]!r}")
    return {k: v for k, v in table.items() if k != "name"}


def _validate(path: Path, p: DeviceProfile) -> None:
    if p.abi not in ABIS:
        raise BadInput(f"{path}: [{p.name}] abi {p.abi!r} is not one of {', '.join(ABIS)}")
    if p.transport not in TRANSPORTS:
        raise BadInput(f"{path}: [{p.name}] transport {p.transport!r} is not one of {', '.join(TRANSPORTS)}")
    if p.transport == "qemu" and p.abi != "arm64-v8a":
        raise BadInput(f"{path}: [{p.name}] transport qemu emulates arm64 (qemu-aarch64): abi must be \"arm64-v8a\", "
                       f"not {p.abi!r}")
    if p.workdir is not None and (not p.workdir.startswith("/") or any(c in p.workdir for c in "\n\0")
                                  or p.workdir.rstrip("/") == ""):
        raise BadInput(f"{path}: [{p.name}] workdir must be an absolute path on the device like "
                       f"\"/data/local/tmp/harness\", got {p.workdir!r}")
    if p.affinity:
        resolve_affinity(p, p.affinity, source=f"{path}: [{p.name}] affinity")
    for key, value in (getattr(p, "options", None) or {}).items():
        if key in _INT_OPTIONS:
            lo, hi = _INT_OPTIONS[key]
            if type(value) is not int or not lo <= value <= hi:
                raise BadInput(f"{path}: [{p.name}] options.{key} must be a whole number from {lo} to {hi}, "
                               f"got {value!r}")
        if key.endswith("timeout"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 86400
            if not ok:
                raise BadInput(f"{path}: [{p.name}] {key} must be a number of seconds (e.g. 10), got {value!r}")


def load_catalog(extra: Path | None = None) -> dict[str, DeviceProfile]:
    """Built-in profiles, then the user's file, then `extra`; a later file overrides the fields it names."""
    files = [BUILTIN]
    if user_catalog_path().is_file():
        files.append(user_catalog_path())
    if extra is not None:
        extra = Path(extra)
        if not extra.is_file():
            raise BadInput(f"{extra}: device catalog file not found")
        files.append(extra)
    profiles: dict[str, DeviceProfile] = {}
    for path in files:
        for name, table in _read_toml(path).items():
            fields = _check_fields(path, name, table)
            if name in profiles:
                options = {**profiles[name].options, **fields.pop("options", {})}
                clusters = fields.pop("clusters", profiles[name].clusters)
                profile = dataclasses.replace(profiles[name], options=options, clusters=clusters, **fields)
            else:
                missing = [k for k in ("abi", "transport") if k not in fields]
                if missing:
                    raise BadInput(f"{path}: new device [{name}] needs {' and '.join(missing)}")
                profile = DeviceProfile(name=name, **fields)
            _validate(path, profile)
            profiles[name] = profile
    return profiles


def get_profile(name: str, extra: Path | None = None, address: str | None = None,
                serial: str | None = None) -> DeviceProfile:
    """The named profile with its address/serial resolved: flag, then catalog field, then its environment variable."""
    catalog = load_catalog(extra)
    if name not in catalog:
        raise BadInput(f"unknown device {name!r}; known devices: {', '.join(sorted(catalog))} "
                       f"(add yours to {user_catalog_path()})")
    p = catalog[name]
    from_env = os.environ.get(p.address_env) if p.address_env else None
    if p.transport == "ssh":
        p = dataclasses.replace(p, address=address or p.address or from_env or None)
    elif p.transport in ("adb", "ios", "ios-simulator"):
        p = dataclasses.replace(p, serial=serial or p.serial or from_env or None)
    return p


def _is_cpu_list(text: str) -> bool:
    return bool(re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text.replace(" ", "")))


def resolve_affinity(profile: DeviceProfile, value: str | None, source: str = "--affinity") -> str | None:
    """A cluster name of the profile (big, mid, little) or a CPU list -> the CPU list; BadInput for anything else,
    naming `source` (the flag, or the profile file and field it came from)."""
    if value is None or value == "":
        return None
    if value in profile.clusters:
        return profile.clusters[value]
    if _is_cpu_list(value):
        return value.replace(" ", "")
    known = ", ".join(f"{k} = {v}" for k, v in profile.clusters.items())
    if value in ("big", "mid", "little", "prime"):
        where = "" if source == "--affinity" else f"{source}: "
        raise BadInput(f"{where}device {profile.name} has no {value} cluster "
                       + (f"(its clusters: {known})" if known else
                          "(its profile lists no clusters: `harness devices add` reads them from the device)"))
    raise BadInput(f"{source} {value!r} is neither a cluster of {profile.name} ({known or 'none listed'}) "
                   "nor a CPU list like 4-7 or 0,1")


def default_workdir(profile: DeviceProfile) -> str | None:
    """Where the harness keeps its files on the device when the profile names no workdir."""
    if profile.workdir:
        return profile.workdir
    if profile.transport == "adb":
        from device_runners.adb import DEFAULT_WORKDIR
        return DEFAULT_WORKDIR  # Android has no /tmp; /data/local/tmp is the shell user's
    if profile.transport == "local":
        from device_runners.workdir import host_default
        return host_default()  # the user's own, never a shared /tmp folder (docs/faults.md, "Security")
    if profile.transport == "qemu":
        return None  # a fresh private sandbox per run (device_runners/qemu.py), or options.sandbox
    if profile.transport in ("ios", "ios-simulator"):
        from device_runners.ios.app import WORKDIR
        return WORKDIR  # under the app's Documents folder
    return None  # ssh: the device's own temporary folder, asked on first use


def make_transport(profile: DeviceProfile) -> Transport:
    """The transport for a profile; nothing is contacted until it is used."""
    opts = profile.options
    if profile.transport == "local":
        from device_runners.local import LocalTransport
        return LocalTransport(workdir=default_workdir(profile))
    if profile.transport == "qemu":
        from device_runners.qemu import QemuTransport
        return QemuTransport(Path(opts["sandbox"]) if opts.get("sandbox") else None)
    if profile.transport == "ssh":
        if not profile.address:
            hint = f"set {profile.address_env}=user@host[:port] or " if profile.address_env else ""
            raise BadInput(f"device {profile.name} has no ssh address: {hint}pass --address user@host[:port]")
        from device_runners.ssh import SshTransport
        password = os.environ.get(opts["password_env"]) if opts.get("password_env") else None
        return SshTransport(profile.address, key_file=opts.get("key_file"), password=password,
                            workdir=default_workdir(profile), connect_timeout=float(opts.get("connect_timeout", 10)))
    if profile.transport == "adb":
        env_port = os.environ.get("ANDROID_ADB_SERVER_PORT")  # adbutils reads it when imported
        if env_port and not (env_port.isdigit() and 1 <= int(env_port) <= 65535):
            raise BadInput(f"ANDROID_ADB_SERVER_PORT={env_port[:40]!r} is not a port number (1 to 65535)")
        from device_runners.adb import AdbTransport
        host = opts.get("adb_host") or os.environ.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
        port = int(opts.get("adb_port") or env_port or 5037)
        return AdbTransport(serial=profile.serial, host=host, port=port, workdir=default_workdir(profile))
    if profile.transport == "ios":
        from device_runners.ios.device import IosTransport, app_from_env
        return IosTransport(serial=profile.serial, app=app_from_env(opts),
                            connect_timeout=float(opts.get("connect_timeout", 30)))
    if profile.transport == "ios-simulator":
        from device_runners.ios.device import app_from_env
        from device_runners.ios.simulator import SimulatorTransport
        return SimulatorTransport(device=profile.serial or "booted", app=app_from_env(opts))
    raise BadInput(f"device {profile.name}: unknown transport {profile.transport!r}")


def reachable(profile: DeviceProfile, timeout: float = 10.0) -> tuple[bool, str]:
    """Whether the device answers a trivial command right now, and why not when it does not."""
    if profile.transport == "qemu" and shutil.which("qemu-aarch64") is None:
        return False, "qemu-aarch64 not installed (apt-get install qemu-user)"
    try:
        transport = make_transport(profile)
    except ImportError as e:
        return False, f"transport not available: {e}"
    except HarnessError as e:
        return False, str(e)
    try:
        if profile.transport in ("ios", "ios-simulator"):  # no shell: connect as a run would, say what is missing
            return True, transport.check()
        rc, out, err = transport.shell("echo ok", timeout=timeout)
        if rc != 0 or out.strip() != "ok":
            return False, f"`echo ok` gave exit code {rc}: {(err or out).strip()[:200]}"
        return True, _where(profile, transport)
    except TransportError as e:
        return False, str(e)
    except TimeoutError:
        return False, f"no answer within {timeout:g} s"
    finally:
        transport.close()


def _where(profile: DeviceProfile, transport: Transport) -> str:
    serial = getattr(transport, "serial", None)
    if profile.transport == "adb" and serial:
        return f"adb device {serial} answers"
    if profile.transport == "ssh":
        return f"{profile.address} answers"
    return "answers"


CLUSTER_NAMES = {1: ("big",), 2: ("little", "big"), 3: ("little", "mid", "big")}


def clusters_from_freqs(max_khz: dict[int, int]) -> dict[str, str]:
    """Cores grouped by cpuinfo_max_freq, slowest first: little, (mid,) big; more than three groups keep the fastest
    as big and the slowest as little and number the rest mid1, mid2..."""
    groups: dict[int, list[int]] = {}
    for cpu, khz in sorted(max_khz.items()):
        groups.setdefault(khz, []).append(cpu)
    ordered = [groups[k] for k in sorted(groups)]
    names = CLUSTER_NAMES.get(len(ordered)) or (
        "little", *[f"mid{i}" for i in range(1, len(ordered) - 1)], "big")
    return {name: _cpu_span(cpus) for name, cpus in zip(names, ordered)}


def _cpu_span(cpus: list[int]) -> str:
    cpus = sorted(cpus)
    if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1)):
        return f"{cpus[0]}-{cpus[-1]}"
    return ",".join(map(str, cpus))


def profile_from_device(name: str, transport_kind: str, info: dict, serial: str | None = None,
                        address: str | None = None) -> DeviceProfile:
    """A profile for the device `info` (Transport.info()) describes: model, ABI, clusters, the big cluster pinned."""
    max_khz = {int(k): int(v) for k, v in (info.get("freq_max_khz") or {}).items()}
    clusters = clusters_from_freqs(max_khz) if max_khz else {}
    abi = info.get("abi")
    if abi not in ABIS:
        raise BadInput(f"device {name}: ABI {abi!r} is not one the harness builds ({', '.join(ABIS)})")
    big = clusters.get("big")
    threads = max(1, min(2, len(_expand(big)) if big else int(info.get("cores") or 1)))
    props = info.get("android_props") or {}
    soc = props.get("ro.soc.model") or info.get("cpu") or ""
    desc = " ".join(x for x in (info.get("model"), f"({soc})" if soc else "", info.get("os")) if x)
    return DeviceProfile(name=name, abi=abi, transport=transport_kind, description=desc, threads=threads,
                         affinity="big" if big and len(clusters) > 1 else None, model=info.get("model"),
                         clusters=clusters, serial=serial, address=address)


def _expand(mask: str) -> list[int]:
    out = []
    for part in mask.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def profile_toml(p: DeviceProfile) -> str:
    """One [name] table in the catalog's format."""
    def q(v: str) -> str:
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = [f"[{p.name}]"]
    for key in ("description", "abi", "transport", "model", "serial", "address", "workdir", "affinity"):
        v = getattr(p, key)
        if v:
            lines.append(f"{key} = {q(v)}")
    lines.append(f"threads = {p.threads}")
    if p.clusters:
        lines.append("clusters = { " + ", ".join(f"{k} = {q(v)}" for k, v in p.clusters.items()) + " }")
    if p.options:
        lines.append("options = { " + ", ".join(f"{k} = {q(v)}" for k, v in p.options.items()) + " }")
    return "\n".join(lines) + "\n"


def add_profile(p: DeviceProfile, path: Path | None = None, replace: bool = False) -> Path:
    """Write the profile into the user's catalog (atomically); an existing name needs replace=True."""
    path = Path(path) if path else user_catalog_path()
    text = path.read_text() if path.is_file() else ""
    tables = _read_toml(path) if text else {}
    if p.name in tables and not replace:
        raise BadInput(f"device {p.name} is already in {path}: pass --replace to overwrite it")
    if p.name in tables:
        text = _drop_table(text, p.name)
    if p.name in load_catalog() and p.name not in tables and not replace:
        raise BadInput(f"device {p.name} is a built-in profile: choose another name or pass --replace to override it")
    new = (text.rstrip() + "\n\n" if text.strip() else "") + profile_toml(p)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    with open(tmp, "rb") as f:
        tomllib.load(f)  # never leave an unreadable catalog behind
    tmp.replace(path)
    return path


def _drop_table(text: str, name: str) -> str:
    out, skip = [], False
    for line in text.splitlines(keepends=True):
        head = re.match(r"\s*\[([^\]]+)\]\s*$", line)
        if head:
            skip = head.group(1).strip().strip('"') == name
        if not skip:
            out.append(line)
    return "".join(out)
