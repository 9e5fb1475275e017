"""Which modules a recipe touches: `--keep-fp32` glob patterns resolved against module names."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Callable, Iterable

from common.errors import BadInput

if TYPE_CHECKING:  # torch is imported where it is used: `harness recipes` must not pay for it
    import torch


def matches(name: str, pattern: str) -> bool:
    """A pattern names a module by its full name or by any dotted tail of it ("classifier", "layers.23")."""
    return fnmatchcase(name, pattern) or fnmatchcase(name, "*." + pattern)


def is_kept(name: str, patterns: Iterable[str]) -> bool:
    """True when the module or one of its parents matches a pattern: keeping "layers.0" keeps all it holds."""
    parts = name.split(".")
    prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    return any(matches(p, pat) for pat in patterns for p in prefixes)


def check_patterns(model: torch.nn.Module, patterns: Iterable[str]) -> None:
    """Each --keep-fp32 pattern must name at least one module, else the user's intent silently did nothing."""
    names = [n for n, _ in model.named_modules() if n]
    for pat in patterns:
        if not pat or not any(matches(n, pat) for n in names):
            hint = ", ".join(names_hint(model))
            raise BadInput(f"--keep-fp32 {pat!r} matches no module; names look like: {hint}")


def names_hint(model: torch.nn.Module, k: int = 4) -> list[str]:
    """A few module names a user could pass to --keep-fp32 (the shortest linear-holding ones)."""
    import torch

    names = sorted({n for n, m in model.named_modules() if n and isinstance(m, torch.nn.Linear)}, key=len)
    return names[:k]


def linear_filter(patterns: Iterable[str]) -> Callable[[torch.nn.Module, str], bool]:
    """A torchao `quantize_` filter: every nn.Linear not kept in float."""
    import torch

    patterns = list(patterns)
    return lambda m, fqn: isinstance(m, torch.nn.Linear) and not is_kept(fqn, patterns)


def quantized_linears(model: torch.nn.Module, patterns: Iterable[str]) -> list[tuple[str, torch.nn.Linear]]:
    patterns = list(patterns)
    import torch

    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not is_kept(n, patterns)]
