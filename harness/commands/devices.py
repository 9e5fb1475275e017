"""`harness devices`: the device catalog, and with --check whether each device answers right now."""

from __future__ import annotations

import dataclasses
import json
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
    if p.transport == "ios":
        return f"the only attached iPhone ({env} unset)"
    if p.transport == "ios-simulator":
        return f"the booted simulator ({env} unset)"
    return f"none: set {env}=user@host[:port]"


def _rows(profiles: list[DeviceProfile], check: bool, timeout: float) -> list[tuple[str, ...]]:
    from device_runners.catalog import reachable

    if check:
        _start_adb_server_once(profiles)
        with ThreadPoolExecutor(max_workers=min(8, len(profiles) or 1)) as pool:
            answers = list(pool.map(lambda p: reachable(p, timeout=timeout), profiles))
    else:
        answers = [None] * len(profiles)
    rows = []
    for p, answer in zip(profiles, answers):
        mask = p.clusters.get(p.affinity, p.affinity) if p.affinity else None
        cores = f"{p.threads}" + (f" @ {p.affinity}" if p.affinity else "") + (f"={mask}" if mask != p.affinity else "")
        state = "-" if answer is None else ("yes: " if answer[0] else "no: ") + answer[1]
        rows.append((p.name, p.abi, p.transport, _where(p), cores, state))
    return rows


def _start_adb_server_once(profiles: list[DeviceProfile]) -> None:
    """One quiet `adb start-server` before the checks run in parallel (it is stopped when the command ends)."""
    from device_runners.base import TransportError
    from device_runners.catalog import make_transport

    for p in profiles:
        if p.transport == "adb":
            from device_runners.adb import ensure_server
            t = make_transport(p)
            try:
                ensure_server(t.host, t.port)
            except TransportError:
                pass  # each adb row says why
            return


@click.group("devices", invoke_without_command=True)
@click.option("--check", is_flag=True, help="Contact every device now and say whether it answers, and why not.")
@click.option("--devices-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="An extra device catalog (TOML) on top of the built-in one and ~/.config/harness/devices.toml.")
@click.option("--timeout", default=10.0, show_default=True, type=float, help="Seconds to wait for each device.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: one object per profile, for scripts.")
@click.pass_context
def devices_command(ctx, check: bool, devices_file: Path | None, timeout: float, fmt: str) -> None:
    """List the device profiles: name, ABI, transport, address or serial, threads @ cores.

    \b
    Examples:
      harness devices
      HARNESS_RPI5=pi@raspberrypi.local HARNESS_PIXEL7_SERIAL=28121FDH2000AB harness devices --check
      harness devices --devices-file my-lab.toml --check
      harness devices --format json
      harness devices add mypixel --adb              # read the attached phone, write its profile
    """
    if ctx.invoked_subcommand is not None:
        return
    from device_runners.catalog import default_workdir, get_profile, load_catalog, resolve_affinity, user_catalog_path

    names = sorted(load_catalog(devices_file))
    profiles = [get_profile(n, extra=devices_file) for n in names]
    header = ("NAME", "ABI", "TRANSPORT", "ADDRESS/SERIAL", "THREADS", "REACHABLE")
    body = _rows(profiles, check, timeout)
    if fmt == "json":
        out = []
        for p, row in zip(profiles, body):
            d = dataclasses.asdict(p)
            d["where"] = row[3]
            # what a run will use: the profile's workdir or the transport's per-user default (an ssh board's is
            # asked on first use: None here), its threads and its affinity as a CPU list
            d["workdir"] = default_workdir(p)
            d["affinity_cpus"] = resolve_affinity(p, p.affinity) if p.affinity else None
            if check:
                d["reachable"], d["reason"] = row[5].startswith("yes"), row[5].split(": ", 1)[1]
            out.append(d)
        click.echo(json.dumps(out, indent=2))
        return
    rows = [header, *body]
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


@devices_command.command("add")
@click.argument("name")
@click.option("--adb", "adb_serial", is_flag=False, flag_value="", default=None, metavar="[SERIAL]",
              help="Read an Android device over adb (the only attached one when no serial is given).")
@click.option("--ssh", "ssh_address", default=None, metavar="USER@HOST[:PORT]", help="Read a Linux board over ssh.")
@click.option("--key-file", default=None, help="ssh private key (default: agent and ~/.ssh keys).")
@click.option("--devices-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write into this catalog instead of ~/.config/harness/devices.toml.")
@click.option("--replace", is_flag=True, help="Overwrite a profile of the same name.")
@click.option("--timeout", default=30.0, show_default=True, type=float, help="Seconds to wait for the device.")
def add_command(name, adb_serial, ssh_address, key_file, devices_file, replace, timeout) -> None:
    """Read the attached device (model, SoC, ABI, cores by max frequency) and write its profile.

    Clusters are named by speed (little, mid, big) with their CPU lists; the profile pins the big cluster.

    \b
    Examples:
      harness devices add mypixel --adb
      harness devices add lab-phone --adb 28121FDH2000AB
      harness devices add myboard --ssh pi@raspberrypi.local
    """
    from device_runners.base import DeviceProfile, TransportError
    from device_runners.catalog import add_profile, make_transport, profile_from_device, profile_toml
    from common.errors import BadInput, DeviceError

    if (adb_serial is None) == (ssh_address is None):
        raise BadInput("harness devices add: give exactly one of --adb [SERIAL] or --ssh user@host")
    kind = "adb" if adb_serial is not None else "ssh"
    probe = DeviceProfile(name=name, abi="arm64-v8a", transport=kind, serial=adb_serial or None,
                          address=ssh_address, options={"key_file": key_file} if key_file else {})
    transport = make_transport(probe)
    try:
        info = transport.info()
        serial = getattr(transport, "serial", None)
    except (TransportError, TimeoutError, OSError) as e:
        raise DeviceError(f"cannot read device for {name}: {e}") from None
    finally:
        transport.close()
    profile = profile_from_device(name, kind, info, serial=serial if adb_serial else None, address=ssh_address)
    if key_file:
        profile.options["key_file"] = key_file
    path = add_profile(profile, devices_file, replace=replace)
    click.echo(profile_toml(profile).rstrip())
    click.echo(f"written to {path}; run it with: harness run --device {name} --devices-file {path}"
               if devices_file else f"written to {path}; run it with: harness run --device {name}")


@devices_command.command("install")
@click.argument("name")
@click.option("--app", "app", required=True, type=click.Path(path_type=Path, dir_okay=True),
              help="The harness app: an .ipa signed with your team (iPhone) or the built .app (simulator).")
@click.option("--serial", default=None, help="The iPhone's UDID (default: the profile's, then the only attached one).")
@click.option("--devices-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="An extra device catalog (TOML).")
def install_command(name, app, serial, devices_file) -> None:
    """Install the harness benchmark app on an iPhone (or a simulator) when its version differs.

    `harness run` does the same before a run when HARNESS_IOS_APP (or the profile's app option) names the app.

    \b
    Examples:
      harness devices install iphone15 --app build/HarnessRunner.ipa
      harness devices install ios-simulator --app build/Build/Products/Release-iphonesimulator/HarnessRunner.app
    """
    from device_runners.base import TransportError
    from device_runners.catalog import get_profile, make_transport
    from common.errors import BadInput, DeviceError

    profile = get_profile(name, extra=devices_file, serial=serial)
    if profile.transport not in ("ios", "ios-simulator"):
        raise BadInput(f"harness devices install: {name} is not an iOS device (transport {profile.transport})")
    if not Path(app).exists():
        raise BadInput(f"--app {app}: no such file")
    transport = make_transport(profile)
    transport.app = Path(app)
    try:
        version = transport.install()
    except (TransportError, TimeoutError, OSError) as e:
        raise DeviceError(f"cannot install on {name}: {e}") from None
    finally:
        transport.close()
    click.echo(f"{name}: the harness app version {version} is installed ({getattr(transport, 'serial', '')})")
