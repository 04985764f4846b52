"""`aic bench ...`: benchmark commands. Each measures and prints; none asserts a target.

Each subcommand calls a `run_*` function in its layer's package and prints a table or JSON.
"""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Measure performance of each layer against its reference.", no_args_is_help=True
)


@bench_app.command("storage")
def storage_bench(
    size_mib: int = typer.Option(256, "--size-mib", min=1, help="Size of the random blob."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Storage: put into one local node and get from two over HTTP, vs the hashing limit."""
    from aicommons.cli._common import print_json
    from aicommons.storage.bench import run_storage_bench

    figures = run_storage_bench(size_mib)
    if as_json:
        print_json(figures)
        return
    for key, value in figures.items():
        typer.echo(f"{key:>16}  {value}")
    typer.echo("target: put_ratio >= 0.5 and get_ratio >= 0.5")
