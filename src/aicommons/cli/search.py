"""`aic search`: the semantic-search demo `aic up` prepares (all-MiniLM-L6-v2 via the market).

A thin shell over `aicommons.sdk.demo`: it parses, waits for the demo, prints; never ranks or
embeds anything itself.
"""

from __future__ import annotations

import typer

from aicommons.cli._common import CliError, console, err_console
from aicommons.cli.network import AccountOption, NodeOption, RpcOption, _client


def search(
    query: str = typer.Argument(..., help="What to look for, in plain words."),
    k: int = typer.Option(3, "-k", help="How many documents to show."),
    wait: float = typer.Option(900.0, "--wait", help="Seconds to wait for the demo to be ready."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
) -> None:
    """Rank the demo documents against QUERY: its embedding comes back as a finalised,
    verified market result (the receipt is kept)."""
    from aicommons.sdk import demo

    if not query.strip():
        raise CliError("the query is empty: give some words to search for")
    if k < 1:
        raise CliError(f"-k must be at least 1 (got {k})")

    def announce(status: demo.SearchStatus) -> None:
        err_console.print(f"the search demo is still preparing ({status.detail}); waiting…")

    try:
        demo.wait_search_ready(wait, announce)
        result = demo.search(_client(rpc, account, node), query, k)
    except (ValueError, TimeoutError) as exc:
        raise CliError(str(exc)) from None
    receipt = result.receipt
    console.print(
        f"query embedded by market request {receipt.request_id} ({receipt.provider}), "
        f"finalised in tx {receipt.finalise_tx}"
    )
    for rank, hit in enumerate(result.hits, start=1):
        console.print(f"{rank}. {hit.score:.3f}  {hit.document}", highlight=False, soft_wrap=True)
    verdict = "verified" if result.report.ok else f"FAILED: {result.report.failed()}"
    console.print(f"receipt {result.receipt_path}: {verdict}", highlight=False, soft_wrap=True)
    if not result.report.ok:
        raise CliError(f"the search receipt failed verification: {result.report.failed()}")


def search_prepare(rpc: str | None = RpcOption, node: list[str] | None = NodeOption) -> None:
    """(Internal: run by `aic up` in the background.) Prepare the search demo."""
    from aicommons.sdk import demo

    client = _client(rpc, "dev0", node)
    provider = _client(rpc, demo.DEMO_PROVIDER, node)
    published = demo.run_search_preparation(client, provider=provider)
    console.print(f"search demo ready: {published.model} {published.version_id}")


def register(app: typer.Typer) -> None:
    """Add `search` (and the hidden `search-prepare`) to the root `aic` app."""
    app.command("search")(search)
    app.command("search-prepare", hidden=True)(search_prepare)
