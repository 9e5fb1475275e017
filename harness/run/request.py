"""What one run is: the program, the device, the timing floors, the inputs and the bookkeeping of a RunRequest, and
the bounds every request is checked against before anything runs (docs/runner.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import BadInput

RUNNERS = ("native", "python")


@dataclass
class RunRequest:
    program: Path
    device: str = "host"
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
    task: str | None = None  # score real examples of this task through the program
    samples: int = 8  # examples in the inputs file (with --task: how many are scored)
    tokenizer: Path | None = None  # --tokenizer: overrides the one the program was exported with
    profile: bool = False
    cooldown: float = 0.0  # seconds to wait, at most, for temperatures to settle before the run
    wait_for_quiet: float = 0.0  # seconds to wait, at most, for other work on the device to stop before the run
    # device state (harness/run/device_state.py)
    max_start_temp: float | None = None  # thermal gate: battery and skin at or below this (°C), within `cooldown`
    check_model: bool = True  # refuse a device whose model is not its profile's
    timeout: float = 900.0
    devices_file: Path | None = None
    address: str | None = None
    serial: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None  # None: this run is a campaign of its own (the CLI gives one per invocation)
    oversubscribe: bool = False  # allow more runner threads than the device has cores
    schedule: dict[str, Any] | None = None  # where a campaign plan put this run (harness/run/plan.py)


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

    if not 1 <= req.iterations <= MAX_ITERATIONS:
        raise BadInput(f"--iterations {req.iterations}: between 1 and {MAX_ITERATIONS:,}")
    if not 0 <= req.warmup <= MAX_WARMUP:
        raise BadInput(f"--warmup {req.warmup}: between 0 and {MAX_WARMUP:,}")
    if not (math.isfinite(req.min_seconds) and 0 <= req.min_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--min-seconds {req.min_seconds}: a number of seconds between 0 and {MAX_MIN_SECONDS:.0f}")
    if not (math.isfinite(req.timeout) and 0 < req.timeout <= 7 * 24 * 3600):
        raise BadInput(f"--timeout {req.timeout}: a positive number of seconds (at most a week)")
    if not (math.isfinite(req.wait_for_quiet) and 0 <= req.wait_for_quiet <= 24 * 3600):
        raise BadInput(f"--wait-for-quiet {req.wait_for_quiet}: a number of seconds between 0 and 86400")
    if not (math.isfinite(req.warmup_seconds) and 0 <= req.warmup_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--warmup-seconds {req.warmup_seconds}: a number of seconds between 0 and "
                       f"{MAX_MIN_SECONDS:.0f}")
    if not (math.isfinite(req.max_seconds) and 0 <= req.max_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--max-seconds {req.max_seconds}: a number of seconds between 0 (no cap) and "
                       f"{MAX_MIN_SECONDS:.0f}")
    if req.max_seconds and req.max_seconds < req.min_seconds:
        raise BadInput(f"--max-seconds {req.max_seconds:g} is shorter than --min-seconds {req.min_seconds:g}: "
                       "the cap would end every run before its floor")
    if req.min_seconds + req.warmup_seconds >= req.timeout:
        raise BadInput(f"--min-seconds {req.min_seconds:g} and --warmup-seconds {req.warmup_seconds:g} are not "
                       f"shorter than --timeout {req.timeout:g}: the run would be killed before it could finish")
    if req.min_seconds >= req.timeout:
        raise BadInput(f"--min-seconds {req.min_seconds:g} is not shorter than --timeout {req.timeout:g}: the run "
                       "would be killed before it could finish")
    if req.threads is not None and not 1 <= req.threads <= MAX_THREADS:
        raise BadInput(f"--threads {req.threads}: between 1 and {MAX_THREADS}")
    if not 1 <= req.samples <= MAX_SAMPLES:
        raise BadInput(f"--samples {req.samples}: between 1 and {MAX_SAMPLES:,}")
    if req.runner not in RUNNERS:
        raise BadInput(f"unknown --runner {req.runner!r}; known: {', '.join(RUNNERS)}")
    if req.xnnpack_cache and req.runner == "python":
        raise BadInput("--xnnpack-cache needs the native runner (ExecuTorch's Python runtime takes no backend options)")
    if req.runner_bin is not None and not Path(req.runner_bin).is_file():
        raise BadInput(f"--runner-bin {req.runner_bin}: no such file")


def check_input_size(specs, samples: int) -> None:
    """The inputs file is estimated before a byte of it is made: a huge --samples is one line, not a MemoryError."""
    import math

    sizes = {"int64": 8, "float32": 4, "int32": 4, "float16": 2, "bool": 1, "uint8": 1, "int8": 1}
    per = sum(math.prod(max(1, d) for d in s.shape) * sizes.get(s.dtype, 8) for s in specs)
    if per * samples > MAX_INPUT_BYTES:
        raise BadInput(f"--samples {samples}: the inputs would take {per * samples / 2**30:.1f} GiB (limit "
                       f"{MAX_INPUT_BYTES / 2**30:.0f} GiB): use fewer samples")
