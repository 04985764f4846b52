"""`aic bench ...`: benchmark commands. Each measures and prints; none asserts a target.

Each subcommand calls a `run_*` function in its layer's package and prints a table or JSON.
"""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Measure performance of each layer against its reference.", no_args_is_help=True
)
