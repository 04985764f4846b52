"""Shared plumbing for CLI commands: one-line errors and JSON output.

Nothing here knows about models, chains or storage; it only turns outcomes into terminal output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class CliError(Exception):
    """An expected failure that the CLI prints as one line (no traceback) and exits non-zero."""


def print_json(payload: Any) -> None:
    """Print `payload` as JSON on stdout, nothing else, so scripts can parse it."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as a one-line error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_cli(app: typer.Typer) -> None:
    """Run `app`, turning every expected error class into a one-line message and exit status 1.

    Packages raise `ValueError` subclasses (and `OSError`) for bad input; those are user errors
    here. Anything else is a bug and keeps its traceback.
    """
    try:
        app(standalone_mode=True)
    except (CliError, ValueError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SystemExit(fail(message).exit_code) from None
