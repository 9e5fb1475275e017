"""What one run is, cut as MLPerf's LoadGen cuts a test: the device target (system under test), the run settings
(test settings), the inputs (sample library) and the gates, held by a RunRequest with the campaign bookkeeping; and
the bounds every request is checked against before anything runs (docs/runner.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import BadInput

RUNNERS = ("native", "python")


@dataclass(frozen=True)
class DeviceTarget:
    """Which device, and how to reach it (the system under test, in MLPerf LoadGen's words)."""

    name: str = "host"
    devices_file: Path | None = None
    address: str | None = None  # ssh user@host[:port]
    serial: str | None = None  # adb serial
    check_model: bool = True  # refuse a device whose model is not its profile's
    oversubscribe: bool = False  # allow more runner threads than the device has cores


@dataclass(frozen=True)
class RunSettings:
    """How one program is timed on the device (the test settings): the runner, its floors and its threads."""

    runner: str = "native"  # "native" | "python"
    runner_bin: Path | None = None  # the user's own runner binary (e.g. runner.cpp built with the Android NDK)
    xnnpack_cache: bool = False  # keep XNNPACK's packed weights in a file on the device, reused by later runs
    warmup: int = 10
    iterations: int = 50
    min_seconds: float = 0.0
    warmup_seconds: float = 0.0  # the warmup lasts this long as well as `warmup` iterations
    max_seconds: float = 0.0  # 0: no cap; else the timed loop ends here even short of `iterations`
    threads: int | None = None  # None: the device profile's default
    affinity: str | None = None
    profile: bool = False  # collect an ETDump (flagged; never pooled with timing runs)
    # write every example's outputs after the timed loop and score them (accuracy, agreement with fp32). A campaign
    # scores each request once (its first run that scores) and times the others only, as MLPerf's LoadGen
    # separates its accuracy and performance modes: same program, inputs and threads give the same outputs.
    score: bool = True
    timeout: float = 900.0

    def timing_name(self) -> str:
        """The timing preset these iterations and floors are (quick, default, ...), or "custom" (a record's `timing`)."""
        from common.timing import timing_name

        if self.max_seconds:
            return "custom"
        return timing_name(self.warmup, self.iterations, self.min_seconds, self.warmup_seconds)

    @classmethod
    def from_preset(cls, name: str = "default", **overrides) -> "RunSettings":
        """A timing preset's iterations and floors (common/timing.py), with any field overridden."""
        from common.timing import preset

        t = preset(name)
        base = dict(warmup=t.warmup, iterations=t.iterations, min_seconds=t.min_seconds,
                    warmup_seconds=t.warmup_seconds)
        return cls(**{**base, **{k: v for k, v in overrides.items() if v is not None or k not in base}})


@dataclass(frozen=True)
class InputsSpec:
    """What is fed to the program (the sample library): synthetic inputs, or real examples of a task."""

    task: str | None = None  # score real examples of this task through the program
    samples: int = 8  # examples in the inputs file (with a task: how many are scored)
    tokenizer: Path | None = None  # overrides the one the program was exported with


@dataclass(frozen=True)
class Gates:
    """What the device must be before a run starts (harness/run/device_state.py)."""

    cooldown: float = 0.0  # seconds to wait, at most, for temperatures to settle
    wait_for_quiet: float = 0.0  # seconds to wait, at most, for other work on the device to stop
    max_start_temp: float | None = None  # thermal gate: battery and skin at or below this (°C), within `cooldown`
    # the near-cores gate (docs/statistics.md#far-cores): near CPUs' core round trip (ns) on this device in the
    # campaign; the native runner waits up to `wait_for_quiet` while its CPUs are over twice as far apart. The
    # campaign's scheduler (harness/run/plan.py) sets it from each run's evidence.
    near_cores_ns: float | None = None
    # a quiet reading of this device moments ago that this run takes instead of probing again (set by the campaign's
    # scheduler: {"from_run", "age_s"}, see plan.QUIET_REUSE_S); None: probe, as a lone run always does
    quiet_seen: dict | None = None


_PARTS = {"device": DeviceTarget, "settings": RunSettings, "inputs": InputsSpec, "gates": Gates}


@dataclass
class RunRequest:
    """One run: a program on a device target, with run settings, inputs and gates, and the campaign bookkeeping."""

    program: Path
    device: DeviceTarget = field(default_factory=DeviceTarget)
    settings: RunSettings = field(default_factory=RunSettings)
    inputs: InputsSpec = field(default_factory=InputsSpec)
    gates: Gates = field(default_factory=Gates)
    tags: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None  # None: this run is a campaign of its own (the CLI gives one per invocation)
    schedule: dict[str, Any] | None = None  # where a campaign plan put this run (harness/run/plan.py)

    @classmethod
    def of(cls, program: Path, device: str = "host", *, tags: dict | None = None, campaign: str | None = None,
           **fields) -> "RunRequest":
        """A request from flat keywords, each sorted into its part: `RunRequest.of(p, "host", iterations=20,
        task="rotten_tomatoes", wait_for_quiet=10)`. An unknown keyword is a TypeError, as for any call."""
        parts: dict[str, dict] = {name: {} for name in _PARTS}
        for key, value in fields.items():
            owner = next((name for name, kind in _PARTS.items() if key in kind.__dataclass_fields__), None)
            if owner is None or key == "name":
                raise TypeError(f"RunRequest.of() got an unexpected keyword argument {key!r}")
            parts[owner][key] = value
        return cls(program=Path(program), device=DeviceTarget(name=device, **parts["device"]),
                   settings=RunSettings(**parts["settings"]), inputs=InputsSpec(**parts["inputs"]),
                   gates=Gates(**parts["gates"]), tags=dict(tags or {}), campaign=campaign)


def new_campaign(prefix: str = "run") -> str:
    """A fresh campaign name: PREFIX-YYYYmmdd-HHMMSS-xxxx (UTC), sortable by time."""
    return f"{prefix}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"


# Upper bounds, checked before anything runs (docs/runner.md): far past any useful measurement, short of a run that
# cannot end before its --timeout or of inputs that do not fit in memory.


MAX_ITERATIONS = 1_000_000


MAX_WARMUP = 100_000


MAX_MIN_SECONDS = 24 * 3600.0


MAX_SAMPLES = 100_000


MAX_THREADS = 256


MAX_INPUT_BYTES = 2 * 2**30  # the inputs file all examples are written to


def validate(req: RunRequest) -> None:
    import math

    st, inp, gates = req.settings, req.inputs, req.gates

    if not 1 <= st.iterations <= MAX_ITERATIONS:
        raise BadInput(f"--iterations {st.iterations}: between 1 and {MAX_ITERATIONS:,}")
    if not 0 <= st.warmup <= MAX_WARMUP:
        raise BadInput(f"--warmup {st.warmup}: between 0 and {MAX_WARMUP:,}")
    if not (math.isfinite(st.min_seconds) and 0 <= st.min_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--min-seconds {st.min_seconds}: a number of seconds between 0 and {MAX_MIN_SECONDS:.0f}")
    if not (math.isfinite(st.timeout) and 0 < st.timeout <= 7 * 24 * 3600):
        raise BadInput(f"--timeout {st.timeout}: a positive number of seconds (at most a week)")
    if gates.near_cores_ns is not None and not (math.isfinite(gates.near_cores_ns) and 0 < gates.near_cores_ns < 1e6):
        raise BadInput(f"near_cores_ns {gates.near_cores_ns}: a core round trip in ns, above 0 and under 1,000,000")
    if not (math.isfinite(gates.wait_for_quiet) and 0 <= gates.wait_for_quiet <= 24 * 3600):
        raise BadInput(f"--wait-for-quiet {gates.wait_for_quiet}: a number of seconds between 0 and 86400")
    if not (math.isfinite(st.warmup_seconds) and 0 <= st.warmup_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--warmup-seconds {st.warmup_seconds}: a number of seconds between 0 and "
                       f"{MAX_MIN_SECONDS:.0f}")
    if not (math.isfinite(st.max_seconds) and 0 <= st.max_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--max-seconds {st.max_seconds}: a number of seconds between 0 (no cap) and "
                       f"{MAX_MIN_SECONDS:.0f}")
    if st.max_seconds and st.max_seconds < st.min_seconds:
        raise BadInput(f"--max-seconds {st.max_seconds:g} is shorter than --min-seconds {st.min_seconds:g}: "
                       "the cap would end every run before its floor")
    if st.min_seconds + st.warmup_seconds >= st.timeout:
        raise BadInput(f"--min-seconds {st.min_seconds:g} and --warmup-seconds {st.warmup_seconds:g} are not "
                       f"shorter than --timeout {st.timeout:g}: the run would be killed before it could finish")
    if st.min_seconds >= st.timeout:
        raise BadInput(f"--min-seconds {st.min_seconds:g} is not shorter than --timeout {st.timeout:g}: the run "
                       "would be killed before it could finish")
    if st.threads is not None and not 1 <= st.threads <= MAX_THREADS:
        raise BadInput(f"--threads {st.threads}: between 1 and {MAX_THREADS}")
    if not 1 <= inp.samples <= MAX_SAMPLES:
        raise BadInput(f"--samples {inp.samples}: between 1 and {MAX_SAMPLES:,}")
    if st.runner not in RUNNERS:
        raise BadInput(f"unknown --runner {st.runner!r}; known: {', '.join(RUNNERS)}")
    if st.xnnpack_cache and st.runner == "python":
        raise BadInput("--xnnpack-cache needs the native runner (ExecuTorch's Python runtime takes no backend options)")
    if st.runner_bin is not None and not Path(st.runner_bin).is_file():
        raise BadInput(f"--runner-bin {st.runner_bin}: no such file")


def check_input_size(specs, samples: int) -> None:
    """The inputs file is estimated before a byte of it is made: a huge --samples is one line, not a MemoryError."""
    import math

    sizes = {"int64": 8, "float32": 4, "int32": 4, "float16": 2, "bool": 1, "uint8": 1, "int8": 1}
    per = sum(math.prod(max(1, d) for d in s.shape) * sizes.get(s.dtype, 8) for s in specs)
    if per * samples > MAX_INPUT_BYTES:
        raise BadInput(f"--samples {samples}: the inputs would take {per * samples / 2**30:.1f} GiB (limit "
                       f"{MAX_INPUT_BYTES / 2**30:.0f} GiB): use fewer samples")
