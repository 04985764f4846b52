"""The `aic` command line: a thin shell over the aicommons packages.

Command functions parse arguments, call one package function and print; they never hold logic.
Expected failures surface as `CliError` and print as one line with a non-zero exit status.
"""

from __future__ import annotations

import typer

from aicommons import __version__
from aicommons.cli._common import run_cli
from aicommons.cli.account import account_app
from aicommons.cli.bench import bench_app
from aicommons.cli.devnet import devnet_app
from aicommons.cli.explorer import explorer_command
from aicommons.cli.governance import register as register_governance_commands
from aicommons.cli.market import register as register_market_commands
from aicommons.cli.model import model_app
from aicommons.cli.network import register as register_network_commands
from aicommons.cli.search import register as register_search_commands
from aicommons.cli.storage import storage_app

app = typer.Typer(
    name="aic",
    help="aicommons: publish AI models as public goods, get predictions anyone can verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Sub-command groups; each lives in its own module next to this one.
app.add_typer(bench_app, name="bench")
app.add_typer(account_app, name="account")
app.add_typer(model_app, name="model")
app.add_typer(devnet_app, name="devnet")
app.command("explorer")(explorer_command)
app.add_typer(storage_app, name="storage")
register_network_commands(app, model_app)
register_governance_commands(app)
register_market_commands(app)
register_search_commands(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"aic {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """aicommons command line."""


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
