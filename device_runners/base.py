"""The contracts between the harness and a device: how files and commands reach it, what a run job is,
and what a runner brings back. Everything device-specific lives behind these."""

from __future__ import annotations

import abc
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


# The runners' progress lines on stderr: `@@harness-progress {"stage": ..., "done": N, "target": N, "elapsed_s": S,
# "min_seconds": S}` (only "stage" on a stage change), about twice a second while warming up and timing.
PROGRESS_MARK = "@@harness-progress"


def parse_progress(line: str) -> dict[str, Any] | None:
    """The JSON of a runner progress line, or None for any other stderr line."""
    if not line.startswith(PROGRESS_MARK + " "):
        return None
    try:
        d = json.loads(line[len(PROGRESS_MARK) + 1:])
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


def without_progress(text: str) -> str:
    """stderr without the progress lines (what is left explains a failure)."""
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith(PROGRESS_MARK))


class TransportError(Exception):
    """A device could not be reached, or a command on it failed to start. The bench turns it into a DeviceError."""


class Transport(abc.ABC):
    """How files and commands reach one device."""

    #: True when timings from this device are functional only (an emulator), never comparable with hardware.
    emulated: bool = False
    kind: str = "abstract"

    @abc.abstractmethod
    def push(self, local: Path, remote: str) -> None: ...

    @abc.abstractmethod
    def pull(self, remote: str, local: Path) -> None: ...

    @abc.abstractmethod
    def shell(self, cmd: str, timeout: float | None = None,
              on_stderr: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        """Run a shell command on the device; returns (exit code, stdout, stderr); on_stderr gets each stderr line as
        it arrives. Raises TransportError when the device cannot be reached, TimeoutError on timeout. On
        KeyboardInterrupt the command and everything it started are stopped (SIGTERM, then SIGKILL) before the
        interrupt goes on; if this process dies, the command dies with it (remote_shell.watchdog)."""

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """A snapshot of the device: model, abi, cores, governor, frequencies, temperatures, os."""

    def workdir(self) -> str:
        """A scratch directory on the device that this harness owns."""
        return "/tmp/harness"

    def close(self) -> None:
        pass


@dataclass
class DeviceProfile:
    """One entry of the device catalog (device_runners/devices.toml, extended by the user's own file)."""

    name: str
    abi: str  # "x86_64" | "arm64-v8a"
    transport: str  # "local" | "qemu" | "ssh" | "adb"
    description: str = ""
    threads: int = 2
    affinity: str | None = None  # a cluster name (big, mid, little) or a CPU list, e.g. "4-7" or "0,1"
    model: str | None = None  # what the device reports (Android ro.product.model); a run refuses another model
    clusters: dict[str, str] = field(default_factory=dict)  # {"big": "6-7", "mid": "4-5", "little": "0-3"}
    serial: str | None = None  # adb serial
    address: str | None = None  # ssh user@host[:port]
    address_env: str | None = None  # environment variable that holds serial/address
    workdir: str | None = None  # None: the user's own, per transport (device_runners/workdir.py)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunJob:
    """What the runner is asked to do. Paths are on the device."""

    program: str
    inputs: str  # tensor file (device_runners/tensorfile.py) holding many tokenized examples
    result: str  # JSON written by the runner
    outputs: str | None = None  # tensor file of every example's outputs, for accuracy
    warmup: int = 10
    iterations: int = 50
    min_seconds: float = 0.0
    warmup_seconds: float = 0.0  # the warmup lasts at least this long as well as `warmup` iterations
    max_seconds: float = 0.0  # 0: no cap; else the timed loop stops here even short of `iterations`
    threads: int = 2
    affinity: str | None = None
    etdump: str | None = None  # write an ETDump here (profiling run)
    timeout: float = 600.0
    # the near-cores gate (native/evidence.h): before timing, wait up to settle_seconds while the run's CPUs are over
    # twice as far apart (core round trip) as near_cores_ns, near CPUs' round trip on this device in the campaign
    near_cores_ns: float = 0.0
    settle_seconds: float = 0.0


@dataclass
class RawResult:
    """What one runner invocation measured, parsed from its JSON."""

    runner: str  # "native" | "python" | "executor_runner"
    load_ms: float
    first_inference_ms: float
    latencies_ms: list[float]
    peak_rss_kb: int | None = None
    peak_rss_method: str = ""
    pss_kb: int | None = None
    num_examples: int = 0
    threads: int | None = None
    runner_version: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> "RawResult":
        """Parse and check a runner's result: the runner's output is untrusted input. MalformedResult names what is
        wrong (invalid JSON, a missing field, a NaN, negative or non-numeric latency, a wrong type)."""
        try:
            d = json.loads(text)
        except ValueError as e:
            raise MalformedResult(f"not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise MalformedResult(f"a JSON {type(d).__name__}, not an object")
        for key in ("load_ms", "first_inference_ms", "latencies_ms"):
            if key not in d:
                raise MalformedResult(f"no {key!r}")
        for key in ("load_ms", "first_inference_ms"):
            _duration(d[key], key)
        lat = d["latencies_ms"]
        if not isinstance(lat, list) or not lat:
            raise MalformedResult("'latencies_ms' is not a non-empty list")
        for i, v in enumerate(lat):
            _duration(v, f"latencies_ms[{i}]")
        for key, lo in (("peak_rss_kb", 0), ("pss_kb", 0), ("num_examples", 0), ("threads", 1)):
            v = d.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
                raise MalformedResult(f"{key!r} is {v!r}, not an integer >= {lo}")
        if not isinstance(d.get("runner", ""), str) or not isinstance(d.get("runner_version", {}), dict):
            raise MalformedResult("'runner' must be a string and 'runner_version' an object")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = {k: v for k, v in d.items() if k not in known}
        obj = cls(**{k: v for k, v in d.items() if k in known and k != "extra"})
        obj.extra.update(extra)
        return obj


class MalformedResult(ValueError):
    """A runner's result file that does not hold what a run needs (the message says what)."""


def _duration(v: Any, name: str) -> float:
    """A finite, non-negative number of milliseconds."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise MalformedResult(f"{name} is {v!r}, not a finite number of milliseconds >= 0")
    return float(v)
