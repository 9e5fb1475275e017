"""`harness`: export programs, run them on devices, report. Thin: parse, call one function, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness import __version__
from harness.common import interrupts
from harness.common.console import silence_libraries

silence_libraries()  # before torch/torchao/executorch are imported anywhere

from harness.commands.core import export_command, run_command  # noqa: E402
from harness.commands.demo import demo_command  # noqa: E402
from harness.common.errors import HarnessError  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, envvar="HARNESS_RESULTS",
              help="Folder for the program cache, the results store and reports.")
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


cli.add_command(export_command)
cli.add_command(run_command)
cli.add_command(demo_command)


def _optional_commands() -> None:
    """Commands owned by other areas; each file adds its own."""
    import importlib

    table = [
        ("harness.commands.report", ["report_command", "compare_command"]),
        ("harness.commands.runs", ["runs_group"]),
        ("harness.commands.results", ["results_group"]),
        ("harness.commands.devices", ["devices_command"]),
        ("harness.commands.runner", ["runner_group"]),
        ("harness.commands.quant", ["recipes_command", "sensitivity_command"]),
        ("harness.commands.train", ["distill_command", "train_command"]),
        ("harness.commands.farm", ["farm_group"]),
    ]
    for module, names in table:
        mod = importlib.import_module(module)
        for n in names:
            cli.add_command(getattr(mod, n))


_optional_commands()


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
