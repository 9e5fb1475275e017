"""`harness`: export programs, run them on devices, report. Thin: parse, call one function, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness import __version__
from common import interrupts
from common.console import silence_libraries

silence_libraries()  # before torch/torchao/executorch are imported anywhere

from common.errors import HarnessError  # noqa: E402


# verb -> (module, attribute): a command's module is imported when that command is used (or listed by --help), so
# `harness run` does not pay for importing report, demo, devices, export, ... (about 35 ms of every run's start)
COMMANDS = {
    "export": ("harness.commands.export", "export_command"),
    "run": ("harness.commands.run", "run_command"),
    "demo": ("harness.commands.demo", "demo_command"),
    "paper": ("harness.commands.paper", "paper_command"),
    "report": ("harness.commands.report", "report_command"),
    "compare": ("harness.commands.report", "compare_command"),
    "runs": ("harness.commands.runs", "runs_group"),
    "results": ("harness.commands.results", "results_group"),
    "devices": ("harness.commands.devices", "devices_command"),
    "runner": ("harness.commands.runner", "runner_group"),
    "recipes": ("harness.commands.quant", "recipes_command"),
    "sensitivity": ("harness.commands.quant", "sensitivity_command"),
    "distill": ("harness.commands.train", "distill_command"),
    "train": ("harness.commands.train", "train_command"),
    "farm": ("harness.commands.farm", "farm_group"),
}


class HarnessGroup(click.Group):
    """The top-level group: `--results DIR` is accepted after the verb too (`harness run --results R ...`), and an
    option that takes one value given twice is an error instead of a silent last-one-wins. Its commands are
    imported on first use (COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            module, attr = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            if command.name != cmd_name:
                raise RuntimeError(f"{module}.{attr} is named {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            rest = _take_results(ctx, rest)
            leaf, leaf_args = cmd, rest
            while isinstance(leaf, click.Group) and leaf_args and not leaf_args[0].startswith("-"):
                sub = leaf.get_command(ctx, leaf_args[0])
                if sub is None:
                    break
                leaf, leaf_args = sub, leaf_args[1:]
            _refuse_repeats(leaf, leaf_args)
        return name, cmd, rest


def _options_after_verb(args: list[str]) -> list[str]:
    return args[:args.index("--")] if "--" in args else args


def _take_results(ctx: click.Context, args: list[str]) -> list[str]:
    """Moves `--results DIR` (or `--results=DIR`) given after the verb to the group, where it belongs."""
    out, i, own = [], 0, len(_options_after_verb(args))
    while i < len(args):
        a = args[i]
        if i < own and a == "--results" and i + 1 < len(args):
            ctx.params["results"] = Path(args[i + 1])
            i += 2
            continue
        if i < own and a.startswith("--results="):
            ctx.params["results"] = Path(a.split("=", 1)[1])
            i += 1
            continue
        out.append(a)
        i += 1
    return out


def _refuse_repeats(cmd: click.Command, args: list[str]) -> None:
    single = {}
    for p in cmd.params:
        if isinstance(p, click.Option) and not (p.multiple or p.count or p.is_flag):
            for opt in p.opts:
                if opt.startswith("--"):
                    single[opt] = p
    seen: dict[str, list[str]] = {}
    for a in _options_after_verb(args):
        flag = a.split("=", 1)[0]
        if flag in single:
            seen.setdefault(single[flag].name, []).append(flag)
    for flags in seen.values():
        if len(flags) > 1:
            raise click.UsageError(f"{flags[0]} is given {len(flags)} times but takes one value (the last would "
                                   "silently win): give it once", ctx=None)


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, envvar="HARNESS_RESULTS",
              help="Folder for the program cache, the results store and reports (before or after the command).")
@click.version_option(version=__version__, prog_name="harness")
@click.pass_context
def cli(ctx: click.Context, results: Path) -> None:
    """On-device benchmarking of compact transformers (MobileBERT first) with ExecuTorch.

    \b
    Typical session:
      harness export --model mobilebert --quant int8
      harness run --program results/programs/mobilebert-int8-s128-*.pte --device host --task rotten_tomatoes
      harness report
    """
    ctx.obj = {"results": results}


def _exit(code: int) -> None:
    interrupts.exiting(code)  # a signal during shutdown ends the process quietly, with this code
    sys.exit(code)


def main() -> None:
    interrupts.install()  # SIGTERM unwinds like Ctrl-C: runs stop their runners and store themselves
    try:
        rv = cli.main(standalone_mode=False)  # returns ctx.exit()'s code instead of exiting
        _exit(rv if isinstance(rv, int) else 0)
    except HarnessError as e:
        click.echo(f"error: {e}", err=True)
        _exit(e.exit_code)
    except click.exceptions.Abort as e:  # click turns KeyboardInterrupt (and Interrupted) into Abort
        cause = e.__cause__
        click.echo(f"interrupted by {interrupts.signame_of(cause)}" if isinstance(cause, KeyboardInterrupt)
                   else "aborted", err=True)
        _exit(interrupts.EXIT_CODE)
    except click.ClickException as e:  # a usage mistake: one line, like every other error (click's would be 3)
        msg = " ".join(e.format_message().split())
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if isinstance(e, click.UsageError) and ctx else ""
        click.echo(f"error: {msg}{hint}", err=True)
        _exit(e.exit_code)
    except KeyboardInterrupt as e:
        click.echo(f"interrupted by {interrupts.signame_of(e)}", err=True)
        _exit(interrupts.EXIT_CODE)


if __name__ == "__main__":
    main()
