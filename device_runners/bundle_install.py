"""Putting a runner bundle on a device, and trusting what is there only when it is byte for byte what was pushed.

The bundle's folder name is a content hash anyone can compute, so a marker file proves nothing: before each run
the device hashes the bundle's files (`sha256sum`, in toybox, busybox and coreutils alike) and the harness compares
them with the hashes of its own local copy. Anything else there (a missing, changed or extra file, or no `sha256sum`
or `find` to ask) is removed and the bundle pushed again.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

from device_runners.base import Transport, TransportError
from program.manifest import sha256_file

_HASHES: dict[Path, dict[str, str]] = {}


def bundle_hashes(bundle: Path) -> dict[str, str]:
    """{relative path: sha256} of every file of a local bundle (computed once per process)."""
    bundle = Path(bundle).resolve()
    if bundle not in _HASHES:
        _HASHES[bundle] = {p.relative_to(bundle).as_posix(): sha256_file(p)
                           for p in sorted(bundle.rglob("*")) if p.is_file()}
    return _HASHES[bundle]


def folder_hashes(folder: Path, names: list[str]) -> dict[str, str] | None:
    """remote_hashes for a folder on this machine, in this process: the same answer (None unless the folder holds
    exactly `names`, as files, no symlinks), without starting find and sha256sum (a quarter second a run here)."""
    try:
        present = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*")
                         if p.is_symlink() or not p.is_dir())
        if present != sorted(names) or any((Path(folder) / n).is_symlink() for n in names):
            return None
        return {n: sha256_file(Path(folder) / n) for n in names}
    except OSError:
        return None


def remote_hashes(transport: Transport, remote: str, names: list[str]) -> dict[str, str] | None:
    """{relative path: sha256} of the files under `remote` on the device; None when they cannot all be hashed or
    the folder holds anything else (an extra library is as foreign as a changed one)."""
    here = getattr(transport, "local_folder", None)
    if here is not None:  # the device is this machine: hash in-process
        return folder_hashes(here(remote), names)
    q = shlex.quote(remote)
    files = " ".join(shlex.quote(n) for n in names)
    rc, out, _ = transport.shell(f"cd {q} 2>/dev/null && find . ! -type d && echo @@hashes && sha256sum -- {files}",
                                 timeout=300)
    listing, sep, hashed = out.partition("@@hashes\n")
    if rc != 0 or not sep:
        return None
    present = sorted(ln[2:] if ln.startswith("./") else ln for ln in listing.splitlines() if ln.strip())
    if present != sorted(names):
        return None
    got = {}
    for line in hashed.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name:
            got[name.strip()] = digest.lower()
    return got


def install_bundle(transport: Transport, bundle: Path, progress: Callable[[str], None] = lambda s: None,
                   device: str = "device") -> str:
    """The bundle's folder on the device, verified against the local copy's hashes (pushed again when it differs).
    Raises TransportError when the device refuses the push."""
    expected = bundle_hashes(bundle)
    remote = f"{transport.workdir().rstrip('/')}/bundles/{Path(bundle).name}"
    if remote_hashes(transport, remote, sorted(expected)) == expected:
        return remote
    progress(f"pushing the runner bundle to {device}")
    rc, out, err = transport.shell(f"rm -rf {shlex.quote(remote)}", timeout=120)  # whatever was there goes first
    if rc != 0:
        raise TransportError(f"cannot replace {remote} on {device}: {(err or out).strip()[:200]}")
    for rel in sorted(expected):
        transport.push(Path(bundle) / rel, f"{remote}/{rel}")
    dirs = sorted({rel.split("/", 1)[0] for rel in expected if "/" in rel})
    rc, out, err = transport.shell(f"cd {shlex.quote(remote)} && chmod -R u+x {' '.join(map(shlex.quote, dirs))}",
                                   timeout=60)
    if rc != 0:
        raise TransportError(f"cannot make the runner bundle executable on {device}: {(err or out).strip()[:200]}")
    if remote_hashes(transport, remote, sorted(expected)) not in (expected, None):
        raise TransportError(f"the runner bundle pushed to {device} does not match the local copy (disk full?)")
    return remote
