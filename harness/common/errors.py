"""The errors a user can cause. The CLI turns each into one line and a non-zero exit; bugs stay tracebacks."""


class HarnessError(Exception):
    """A user-facing failure: the message names the thing at fault and, where possible, the fix."""

    exit_code = 2


class BadInput(HarnessError):
    """A flag, file or name given by the user is wrong (missing path, unknown preset, bad value)."""


class CheckpointError(HarnessError):
    """A checkpoint directory cannot be loaded (missing config, unknown or missing keys, shape mismatch)."""


class ProgramError(HarnessError):
    """A .pte program is missing, damaged, or does not match its manifest."""


class ExportError(HarnessError):
    """A model could not be exported or lowered as the recipe asks."""


class DeviceError(HarnessError):
    """A device is unknown, unreachable, of the wrong ABI, or failed during a run."""


class RunnerError(HarnessError):
    """The on-device runner could not be built, started, or crashed."""


class StoreError(BadInput):
    """The results store (or another output folder) cannot be written or read: full disk, read-only, permissions.
    A BadInput: the fix is the user's (free space, permissions, another --results), and the exit code is 2."""
