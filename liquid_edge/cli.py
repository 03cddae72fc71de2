"""The ``liquid-edge`` command line. Each command lives in its own module under ``liquid_edge.commands``."""

from __future__ import annotations

import sys

import click

from liquid_edge import __version__
from liquid_edge.commands import (bench_cmd, compile_cmd, demo_cmd, inspect_cmd, report_cmd, targets_cmd,
                                 verify_cmd)
from liquid_edge.errors import EXIT_USAGE, LiquidEdgeError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="liquid-edge")
def cli() -> None:
    """Compile trained liquid neural networks (CfC, NCP) into verified C for microcontrollers."""


cli.add_command(inspect_cmd.command)
cli.add_command(compile_cmd.command)
cli.add_command(verify_cmd.command)
cli.add_command(targets_cmd.command)
cli.add_command(bench_cmd.command)
cli.add_command(report_cmd.command)
cli.add_command(demo_cmd.command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and an exit code, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="liquid-edge", standalone_mode=False)
    except LiquidEdgeError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see 'liquid-edge --help')", err=True)
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
