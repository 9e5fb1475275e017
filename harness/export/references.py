"""The fp32 eager model's outputs, cached by content ($HARNESS_CACHE/references/NAME.npz): the export's numerics
check and a run's agreement check compute them once per model and inputs. Imports no torch: a cached reference
costs a read."""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

MAX_CACHED_BYTES = 64 * 2**20  # a masked-LM head's per-token logits run to gigabytes: those are not kept


def key(manifest, encoded: dict[str, np.ndarray], extra: str = "") -> str:
    """What decides a reference's outputs: the model (checkpoint sha256, or the preset with its head, labels and
    config: a preset's weights come from a fixed seed), torch's version and the encoded inputs, byte for byte."""
    import hashlib
    import json
    from common.versions import version

    h = hashlib.sha256(json.dumps({
        "model": manifest.model, "checkpoint_sha256": manifest.checkpoint_sha256, "head": manifest.head,
        "num_labels": manifest.num_labels, "config": manifest.config, "torch": version("torch"),
    }, sort_keys=True, default=str).encode())
    for name in sorted(encoded):
        a = np.ascontiguousarray(encoded[name])
        h.update(f"{name}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    h.update(extra.encode())
    return h.hexdigest()


def cached(name: str, compute: Callable[[], list[np.ndarray] | None]) -> list[np.ndarray] | None:
    """The outputs stored under name, else compute()'s, stored there unless None or past MAX_CACHED_BYTES."""
    from common.errors import StoreError
    from common.files import cache_dir, write_atomic

    path = cache_dir("references") / f"{name}.npz"
    try:
        with np.load(path) as z:
            return [z[f"out{i}"] for i in range(len(z.files))]
    except (OSError, ValueError, KeyError):
        pass  # not there yet, or damaged: computed again below
    outs = compute()
    if outs is None or sum(o.nbytes for o in outs) > MAX_CACHED_BYTES:
        return outs
    buf = io.BytesIO()
    np.savez(buf, **{f"out{i}": o for i, o in enumerate(outs)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, buf.getvalue())
    except (OSError, StoreError):
        pass  # a cache that cannot be written costs time next time, never this result
    return outs
