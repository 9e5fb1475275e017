"""A device session: one connection to one device target for a whole campaign.

A campaign of N runs on one device used to connect N times, check the device's model and its work folder N times,
verify the runner bundle's hashes on the device N times and tokenize the same task N times. A session does each once:
it connects on the first run, checks the model and prepares the work folder once, installs (and verifies) each
runner once, and keeps the inputs each (program inputs, task, samples) made; every run still reads the device's
state before and after itself (the record's evidence is per run). A transport fault closes the session; the next run
connects again, so one dropped connection costs one run, not the rest of the campaign.

    with DeviceSession(target) as session:
        rec = measure.run(request, results, session=session)
"""

from __future__ import annotations

from typing import Callable

from common.errors import DeviceError, HarnessError
from device_runners.base import Transport, TransportError
from harness.run.request import DeviceTarget


class DeviceSession:
    def __init__(self, target: DeviceTarget):
        self.target = target
        self._profile = None
        self.transport: Transport | None = None
        self._checked = False  # model checked and work folder prepared on this connection
        self._installed: dict[str, str] = {}  # runner key -> its path on the device, verified on this connection
        self._inputs: dict[tuple, object] = {}  # (specs, task, samples, vocab, tokenizer, head) -> RunInputs
        self.connections = 0  # how many times this session connected (a campaign on a healthy device: 1)

    def __enter__(self) -> "DeviceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def profile(self):
        """The device profile from the catalog (BadInput for an unknown name), looked up once."""
        if self._profile is None:
            from device_runners.catalog import get_profile

            t = self.target
            self._profile = get_profile(t.name, extra=t.devices_file, address=t.address, serial=t.serial)
        return self._profile

    def open(self) -> Transport:
        """The connected transport: connects (and checks the device answers) on first use or after a fault."""
        if self.transport is None:
            from device_runners.catalog import make_transport

            self.transport = _connect(self.profile, make_transport)
            self.connections += 1
            self._checked, self._installed = False, {}
        return self.transport

    def check_once(self, info_before: dict, progress: Callable[[str], None]) -> None:
        """Once per connection: the device is its profile's model, and its work folder is the user's own."""
        if self._checked:
            return
        from harness.run import device_state

        device_state.check_model(self.profile, info_before, self.target.check_model)
        try:  # the runner is started from it: a folder another user can write is refused before anything is pushed
            from device_runners.workdir import prepare

            prepare(self.transport)
        except (TransportError, TimeoutError, OSError) as e:
            raise DeviceError(f"device {self.profile.name}: {e}") from None
        self._checked = True

    def installed(self, key: str, install: Callable[[], str]) -> str:
        """The device path of runner `key`, installed (and verified) by install() once per connection."""
        if key not in self._installed:
            self._installed[key] = install()
        return self._installed[key]

    def inputs(self, key: tuple, make: Callable[[], object]):
        """The inputs for `key`, made once per session (tokenizing a task's examples takes a while)."""
        if key not in self._inputs:
            self._inputs[key] = make()
        return self._inputs[key]

    def close(self) -> None:
        """Close the connection (stops what the transport started); the next open() connects again."""
        transport, self.transport = self.transport, None
        self._checked, self._installed = False, {}
        if transport is not None:
            transport.close()


def _connect(profile, make_transport) -> Transport:
    """The device's transport, checked to answer; a device that is absent or unreachable is a DeviceError (exit 2)."""
    try:
        transport = make_transport(profile)
    except HarnessError:
        raise
    except (TransportError, TimeoutError, OSError) as e:
        raise DeviceError(f"device {profile.name} is not reachable: {e}") from None
    try:
        rc, out, err = transport.shell("echo harness-ready", timeout=60)
    except (TransportError, TimeoutError, OSError) as e:
        transport.close()
        raise DeviceError(f"device {profile.name} is not reachable: {e}") from None
    if rc != 0 or "harness-ready" not in out:
        transport.close()
        raise DeviceError(f"device {profile.name} does not run commands: {(err or out).strip()[:200] or f'exit {rc}'}")
    return transport
