"""Shared plumbing for CLI commands: one-line errors and JSON output.

Nothing here knows about models, chains or storage; it only turns outcomes into terminal output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

from aicommons.errors import AicommonsError

console = Console()
err_console = Console(stderr=True)


class CliError(AicommonsError):
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

    Packages raise `AicommonsError` subclasses for bad input, a missing or unreadable file is an
    `OSError`, and a remote node's refusal arrives as a web3 or HTTP-client exception; those are
    user errors here. Anything else (a bare `ValueError` included) is a bug and keeps its
    traceback.
    """
    try:
        app(standalone_mode=True)
    except (AicommonsError, OSError) as exc:
        raise SystemExit(fail(_one_line(exc)).exit_code) from None
    except Exception as exc:
        if not _is_remote_error(exc):
            raise
        raise SystemExit(fail(f"{type(exc).__name__}: {_one_line(exc)}").exit_code) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_remote_error(exc: Exception) -> bool:
    """True for errors raised by web3/JSON-RPC and HTTP clients (a node said no, or is down)."""
    root = type(exc).__module__.split(".")[0]
    return root in {"web3", "requests", "httpx", "urllib3", "eth_utils", "eth_abi"}
