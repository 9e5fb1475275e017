"""ETDump -> where the time went: top ops by time and the XNNPACK vs portable split.

Profiled runs are flagged "profiled" by the bench and never mixed with timing runs: the event tracer itself adds
latency (about 12% measured here on MobileBERT)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from common.errors import ProgramError

# Events the runtime records around the whole method (or a whole delegate call) rather than around one op
FRAME_EVENTS = {"Method::execute", "Program::load_method", "Method::init", "Program::load", "DELEGATE_CALL"}
INSTANCE = re.compile(r"\s*#\d+$")  # XNNPACK names each op instance "Op (NC, F32) #3": group by op


def summarize_etdump(etdump: Path, program: Path | None = None, top: int = 15) -> dict[str, Any]:
    """Aggregate an ETDump's profiling events by name: total ms per op, its backend and share of the method."""
    from executorch.devtools import Inspector

    try:
        inspector = Inspector(etdump_path=str(etdump))
    except Exception as e:  # a truncated or foreign ETDump
        raise ProgramError(f"ETDump {etdump} could not be read: {type(e).__name__}: {e}".splitlines()[0]) from None
    totals: dict[str, float] = defaultdict(float)
    backends: dict[str, str] = {}
    runs = 0
    method_ms = delegate_ms = 0.0
    for block in inspector.event_blocks:
        for event in block.events:
            perf = event.perf_data
            if perf is None or not perf.raw:
                continue
            if event.name in FRAME_EVENTS:
                if event.name == "Method::execute":
                    method_ms += sum(perf.raw)
                    runs = max(runs, len(perf.raw))
                elif event.name == "DELEGATE_CALL":
                    delegate_ms += sum(perf.raw)
                continue
            delegated = bool(getattr(event, "is_delegated_op", False))
            name = INSTANCE.sub("", event.name)
            if name == "OPERATOR_CALL":
                name = "portable kernels (unnamed without an ETRecord)"
            totals[name] += sum(perf.raw)
            backends[name] = "XNNPACK" if delegated else "portable"
    ops = sorted(({"name": n, "ms": ms / max(runs, 1), "backend": backends[n]} for n, ms in totals.items()),
                 key=lambda o: -o["ms"])
    split = defaultdict(float)
    for o in ops:
        split[o["backend"]] += o["ms"]
    return {
        "runs": runs,
        "method_ms_per_run": method_ms / max(runs, 1),
        "xnnpack_calls_ms_per_run": delegate_ms / max(runs, 1),
        "ops": ops[:top],
        "split_ms_per_run": dict(split),
        "time_unit": "ms (per inference, averaged over the profiled runs)",
    }
