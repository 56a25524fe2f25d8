"""The ``netcopy`` command (also ``python -m pytest_netcopy``).

Each subcommand lives in its own module and exposes
``register(subparsers) -> None``, which adds its parser and sets
``func=callable(args) -> int`` as the parser default. Errors in input files are
:class:`pytest_netcopy.results.runs.RunFileError`; they are printed as one line on
stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_netcopy.results.runs import RunFileError


def build_parser() -> argparse.ArgumentParser:
    from pytest_netcopy.cli import compare, report

    parser = argparse.ArgumentParser(
        prog="netcopy",
        description="Tables, CSV, plots and regression checks from pytest-netcopy runs "
        "(pytest-benchmark JSON written by --benchmark-json or --benchmark-save).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    report.register(sub)
    compare.register(sub)
    return parser


def error(command: str, message: str) -> int:
    """Print ``netcopy COMMAND: error: MESSAGE`` on stderr; return the exit status 2."""
    print(f"netcopy {command}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except RunFileError as exc:
        return error(args.command, str(exc))
    except BrokenPipeError:  # e.g. `netcopy report ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
