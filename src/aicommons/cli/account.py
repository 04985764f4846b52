"""`aic account new|import|list`: named accounts in encrypted keystores under $AIC_HOME.

Passwords come from `AIC_PASSWORD` or an interactive prompt, never from a command-line argument
(which would end up in shell history and process listings).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from aicommons.chain import accounts
from aicommons.cli._common import CliError, console, print_json

account_app = typer.Typer(help="Manage encrypted keystore accounts.", no_args_is_help=True)


def ask_password(confirm: bool) -> str:
    """The keystore password: `AIC_PASSWORD` if set, else a hidden prompt."""
    from_env = os.environ.get("AIC_PASSWORD")
    if from_env is not None:
        return from_env
    return typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm)


@account_app.command("new")
def new(name: str = typer.Argument(..., help="Account name, e.g. alice.")) -> None:
    """Create a new random key, stored encrypted."""
    info = accounts.new_account(name, ask_password(confirm=True))
    console.print(f"created account [bold]{info.name}[/] {info.address}")


@account_app.command("import")
def import_(
    name: str = typer.Argument(..., help="Account name."),
    key_file: Path = typer.Option(
        None, "--key-file", help="File holding the hex private key (else a hidden prompt)."
    ),
) -> None:
    """Import an existing private key, stored encrypted."""
    if key_file is not None:
        try:
            key = key_file.read_text()
        except OSError as exc:
            raise CliError(f"cannot read key file {key_file}: {exc.strerror}") from exc
    else:
        key = typer.prompt("Private key (hex)", hide_input=True)
    info = accounts.import_account(name, key, ask_password(confirm=True))
    console.print(f"imported account [bold]{info.name}[/] {info.address}")


@account_app.command("list")
def list_(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List keystore accounts."""
    found = accounts.list_accounts()
    if json_output:
        print_json([{"name": a.name, "address": a.address} for a in found])
        return
    table = Table("name", "address")
    for info in found:
        table.add_row(info.name, info.address)
    console.print(table if found else "no accounts yet: `aic account new NAME`")
