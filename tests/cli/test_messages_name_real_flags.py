"""Every message that points the user to a flag names one the harness has: a suggestion to "use --X" that ends in
"No such option '--X'" leads nowhere (issue #28: --text-column was suggested and did not exist)."""

from __future__ import annotations

import ast
import re

import click
from tests.support.cli import subcommands
from tests.support.paths import REPO

PACKAGES = ("common", "data", "program", "model", "device_runners", "harness")
# flags of other programs that messages quote on purpose (torchrun's own, pip's, the Hugging Face CLI's)
FOREIGN = {"--nproc-per-node", "--standalone", "--no-deps", "--library-path", "--help"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def _options() -> set[str]:
    from harness.cli import cli

    found: set[str] = set()

    def walk(cmd: click.Command) -> None:
        for p in cmd.params:
            found.update(o for o in p.opts + p.secondary_opts if o.startswith("--"))
        for _, sub in subcommands(cmd):
            walk(sub)

    walk(cli)
    return found


def _messages() -> list[tuple[str, int, str]]:
    """The text of every string inside a `raise` (and click.echo/console.print of an error) in the packages."""
    out = []
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    for sub in ast.walk(node.exc):
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                            out.append((str(path.relative_to(REPO)), sub.lineno, sub.value))
    return out


def test_every_flag_a_message_names_exists():
    options = _options()
    missing = sorted({(f, f"{p}:{line}") for p, line, text in _messages() for f in FLAG.findall(text)
                      if f not in options and f not in FOREIGN})
    assert not missing, "messages name flags no command has: " + ", ".join(f"{f} ({where})" for f, where in missing)


def test_the_scan_sees_the_messages_it_checks():
    texts = [t for _, _, t in _messages()]
    assert any("--seq-len" in t for t in texts) and any("--nproc" in t for t in texts)  # a scan of nothing passes
    assert "--threads" in _options() and "--seq-len" in _options()


SUGGESTION = re.compile(r"\b(?:use|set|pass|add|give|try|drop)\s+(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def test_every_suggestion_anywhere_names_a_flag_that_exists():
    """Not only raised messages: warnings, notes and hints built into variables first ('use --X', 'set --X',
    'pass --X') in any string of the packages but a docstring."""
    options = _options()
    missing = []
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    missing += [f"{f} ({path.relative_to(REPO)}:{node.lineno})" for f in SUGGESTION.findall(node.value)
                                if f not in options and f not in FOREIGN]
    assert not missing, "suggestions name flags no command has: " + ", ".join(missing)
