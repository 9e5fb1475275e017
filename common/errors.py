"""The errors a user can cause. The CLI turns each into one line and a non-zero exit; bugs stay tracebacks."""

import contextlib


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


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Was `exc` raised by code of one of `packages` itself (the innermost frame), not by a library it called?"""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").split(".")[0] in packages


@contextlib.contextmanager
def plain_errors_as(kind: type[HarnessError] = BadInput, packages: tuple[str, ...] = ("model",),
                    types: tuple[type[BaseException], ...] = (ValueError,)):
    """Turn the plain errors a lower package raises on purpose into `kind`, which the CLI prints as one line.

    `model/` stands alone (it can be copied out the way nanoGPT's model.py can), so it raises ValueError for a bad
    config, checkpoint or input, not this family. Only an error raised by that package's own code is turned: a
    ValueError from inside torch stays a traceback, as a bug should.
    """
    try:
        yield
    except types as e:
        if not _raised_in(e, packages):
            raise
        raise kind(str(e)) from None
