"""`harness runner build`: build (or find in the cache) the native runner bundle for an ABI."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.group("runner")
def runner_group() -> None:
    """The native on-device runner and its per-ABI bundles."""


@click.command("build")
@click.option("--abi", type=click.Choice(["x86_64", "arm64-v8a"]), default="x86_64", show_default=True,
              help="x86_64 for this host (or an x86_64 ssh box); arm64-v8a for phones, boards and qemu.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where bundles live [default: $HARNESS_CACHE/runners or ~/.cache/harness/runners].")
@click.option("--force", is_flag=True, help="Rebuild even when the cache holds this bundle.")
def build_command(abi: str, cache_dir: Path | None, force: bool) -> None:
    """Build the runner bundle: bin/harness_runner plus the ExecuTorch libraries (and for arm64 its own glibc).

    \b
    Examples:
      harness runner build --abi x86_64
      harness runner build --abi arm64-v8a     # needs g++-aarch64-linux-gnu; downloads the aarch64 wheel once
    """
    from device_runners.build import build_bundle, bundle_info

    t0 = time.perf_counter()
    bundle = build_bundle(abi, cache_dir=cache_dir, force=force)
    seconds = time.perf_counter() - t0
    info = bundle_info(bundle)
    how = "built" if seconds > 0.5 or force else "cached"
    click.echo(f"{bundle}  ({abi}, {how} in {seconds:.1f} s, {info['bytes'] / 1e6:.1f} MB, "
               f"executorch {info['executorch']}, {info['compiler']})")
    click.echo(f"start it with: {info['start']}")


runner_group.add_command(build_command)
