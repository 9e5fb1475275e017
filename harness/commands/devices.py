"""`harness devices`: the device catalog, and with --check whether each device answers right now."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from device_runners.base import DeviceProfile


def _where(p: DeviceProfile) -> str:
    """Where the profile points, or what the user must set for it to point anywhere."""
    if p.transport == "local":
        return "this machine"
    if p.transport == "qemu":
        return "qemu-aarch64 -cpu cortex-a76"
    value = p.address if p.transport == "ssh" else p.serial
    if value:
        return value
    env = f"${p.address_env}" if p.address_env else "--serial/--address"
    if p.transport == "adb":
        return f"the only attached device ({env} unset)"
    return f"none: set {env}=user@host[:port]"


def _rows(profiles: list[DeviceProfile], check: bool, timeout: float) -> list[tuple[str, ...]]:
    from device_runners.catalog import reachable

    if check:
        with ThreadPoolExecutor(max_workers=min(8, len(profiles) or 1)) as pool:
            answers = list(pool.map(lambda p: reachable(p, timeout=timeout), profiles))
    else:
        answers = [None] * len(profiles)
    rows = []
    for p, answer in zip(profiles, answers):
        cores = f"{p.threads}" + (f" @ {p.affinity}" if p.affinity else "")
        state = "-" if answer is None else ("yes: " if answer[0] else "no: ") + answer[1]
        rows.append((p.name, p.abi, p.transport, _where(p), cores, state))
    return rows


@click.command("devices")
@click.option("--check", is_flag=True, help="Contact every device now and say whether it answers, and why not.")
@click.option("--devices-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="An extra device catalog (TOML) on top of the built-in one and ~/.config/harness/devices.toml.")
@click.option("--timeout", default=10.0, show_default=True, type=float, help="Seconds to wait for each device.")
def devices_command(check: bool, devices_file: Path | None, timeout: float) -> None:
    """List the device profiles: name, ABI, transport, address or serial, threads @ cores.

    \b
    Examples:
      harness devices
      HARNESS_RPI5=pi@raspberrypi.local HARNESS_PIXEL7_SERIAL=28121FDH2000AB harness devices --check
      harness devices --devices-file my-lab.toml --check
    """
    from device_runners.catalog import get_profile, load_catalog, user_catalog_path

    names = sorted(load_catalog(devices_file))
    profiles = [get_profile(n, extra=devices_file) for n in names]
    header = ("NAME", "ABI", "TRANSPORT", "ADDRESS/SERIAL", "THREADS", "REACHABLE")
    rows = [header, *_rows(profiles, check, timeout)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    if not check:
        click.echo("\n(reachability not checked: add --check)")
    user = user_catalog_path()
    click.echo(f"Catalog: built-in{', ' + str(user) if user.is_file() else ''}"
               f"{', ' + str(devices_file) if devices_file else ''}; add devices in {user} (docs/devices.md).")
    if os.environ.get("ANDROID_ADB_SERVER_PORT"):
        click.echo(f"adb server port from ANDROID_ADB_SERVER_PORT={os.environ['ANDROID_ADB_SERVER_PORT']}")
