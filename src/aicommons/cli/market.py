"""`aic provider ...`, `aic watch` and `aic request ...`: the compute market from the command line.

Thin: parse, call `client.market` (or the daemons in `aicommons.market`), render. Amounts are
decimal AIC (`parse_units`, never floats). Daemons stop cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from aicommons.cli._common import CliError, console, print_json
from aicommons.cli.network import AccountOption, NodeOption, RpcOption

provider_app = typer.Typer(help="Compute providers: stake, offer, serve.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print JSON.")


def _client(rpc: str | None, account: str | None, nodes: list[str] | None, signer: bool = True):
    from aicommons.cli.network import _client as network_client

    return network_client(rpc, account, nodes, signer)


def _units(amount: str | None, what: str) -> int | None:
    from aicommons.sdk.tokens import parse_units

    return None if amount is None else parse_units(amount, what=what)


def _aic(units: int | None) -> str:
    """Base units as decimal AIC, exactly."""
    from decimal import Decimal

    if units is None:
        return "-"
    text = format(Decimal(units).scaleb(-18).normalize(), "f")
    return f"{text} AIC"


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, so a daemon finishes its step and exits cleanly."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


# -- providers ---------------------------------------------------------------------------------


@provider_app.command("register")
def provider_register(
    stake: str = typer.Option(..., "--stake", help="AIC to stake (decimal)."),
    model: list[str] = typer.Option(..., "--model", help="NAME[@VER] to offer (repeat)."),
    price: str = typer.Option("0", "--price", help="AIC per request on top of the version fee."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
    as_json: bool = JsonOption,
) -> None:
    """Stake AIC and offer model versions to the compute market."""
    stake_units, price_units = _units(stake, "--stake"), _units(price, "--price")
    client = _client(rpc, account, node)
    info = client.market.register_provider(stake=stake_units, models=model, price=price_units)
    _render_provider(info, as_json)


@provider_app.command("show")
def provider_show(
    address: str | None = typer.Argument(None, metavar="[ADDR]"),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    as_json: bool = JsonOption,
) -> None:
    """A provider's stake, locked stake, earnings and slashes (default: your account)."""
    client = _client(rpc, account, None, signer=address is None)
    _render_provider(client.market.provider(address), as_json)


def _render_provider(info: Any, as_json: bool) -> None:
    if as_json:
        print_json(info.to_json())
        return
    console.print(f"provider {info.address}")
    for name in ("stake", "locked", "unbonding", "earned", "slashed", "owed"):
        console.print(f"  {name:10} {_aic(getattr(info, name))}")
    for offer in info.offers:
        console.print(f"  offers {offer['version_id'][:18]}… at {_aic(offer['price'])}")


@provider_app.command("withdraw")
def provider_withdraw(
    unstake: str | None = typer.Option(
        None, "--unstake", help="First start unbonding this much free stake (AIC)."
    ),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Withdraw earnings, refunds and unbonded stake (optionally start unbonding first)."""
    client = _client(rpc, account, None)
    amount = _units(unstake, "--unstake")
    if amount:
        client.market.unstake(amount)
        console.print(f"unbonding {_aic(amount)}")
    paid = client.market.withdraw()
    console.print(f"withdrew {_aic(paid)}")


@provider_app.command("graph")
def provider_graph(
    reference: str = typer.Argument(..., metavar="NAME[@VER]"),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
) -> None:
    """Bring a version's graph header into the market's dispute game (anyone, once), proven
    against the graph root the registry records (publishing does it when the market exists)."""
    client = _client(rpc, account, node)
    root = client.market.register_graph(reference)
    console.print(f"graph root {root}")


@provider_app.command("serve")
def provider_serve(
    model: list[str] = typer.Option(..., "--model", help="NAME[@VER] to serve (repeat)."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
    poll: float = typer.Option(0.5, "--poll", min=0.05, help="Seconds between chain polls."),
) -> None:
    """Claim, compute, post (batched), sign, defend and finalise requests until Ctrl-C."""
    from aicommons.market.daemon import EventLog
    from aicommons.market.provider import Provider, prepare_versions

    client = _client(rpc, account, node)
    served = prepare_versions(client, list(model))
    stop = _stop_on_signals()
    log = EventLog(f"provider {client.account.address[:10]}")
    Provider(client, served, log=log, poll_s=poll).run(stop)
    log("stopped")


def watch(
    model: list[str] | None = typer.Option(None, "--model", help="Only these models (repeat)."),
    bond: str | None = typer.Option(
        None, "--bond", help="Most AIC to bond per challenge (default: the market's bond)."
    ),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
    poll: float = typer.Option(0.5, "--poll", min=0.05, help="Seconds between chain polls."),
) -> None:
    """Re-execute every posted result in its window; dispute and play out any wrong one."""
    from aicommons.market.daemon import EventLog
    from aicommons.market.watcher import Watcher

    max_bond = _units(bond, "--bond")
    client = _client(rpc, account, node)
    required = client.market.params()["challenge_bond"]
    if max_bond is not None and max_bond < required:
        raise CliError(f"the market's challenge bond is {_aic(required)}, above --bond {bond}")
    stop = _stop_on_signals()
    log = EventLog(f"watcher {client.account.address[:10]}")
    Watcher(client, tuple(model or ()), log=log, poll_s=poll).run(stop)
    log("stopped")


# -- requests ----------------------------------------------------------------------------------


class _RequestGroup(TyperGroup):
    """`aic request NAME ...` makes a request; `aic request show ID` shows one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["new", *args]
        return super().parse_args(ctx, args)


request_app = typer.Typer(
    cls=_RequestGroup,
    help="Ask the compute market for a prediction: `aic request NAME\\[@VER] --input X` (or "
    "`--text TEXT` for a text model), "
    "`aic request show ID`, `aic request receipt ID --out R.json`.",
    no_args_is_help=True,
)


@request_app.command("new", hidden=True)
def request_new(
    reference: str = typer.Argument(..., metavar="NAME[@VER]"),
    input_path: Path | None = typer.Option(None, "--input", help="One sample: X.npy or X.json."),
    text: str | None = typer.Option(
        None, "--text", help="A text model's input, tokenised with its committed tokenizer."
    ),
    mode: str = typer.Option("optimistic", "--mode", help="optimistic or redundant."),
    providers: int = typer.Option(1, "--providers", min=1, help="Redundant mode: k providers."),
    provider: str | None = typer.Option(None, "--provider", help="Only this provider may claim."),
    max_fee: str | None = typer.Option(None, "--max-fee", help="Most AIC to pay (decimal)."),
    ttl: int = typer.Option(600, "--ttl", help="Seconds until the request's deadline."),
    blob: bool | None = typer.Option(
        None,
        "--blob/--calldata",
        help="Send the input as a storage blob (default: only when too large for calldata).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until the result is final."),
    timeout: float = typer.Option(600.0, "--timeout", min=1.0, help="Seconds --wait waits."),
    receipt_path: Path | None = typer.Option(None, "--receipt", help="Save the receipt here."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
    as_json: bool = JsonOption,
) -> None:
    """Escrow a fee and request a prediction; with --wait, wait for the final result."""
    from aicommons.cli.network import _check_receipt_target
    from aicommons.runtime.files import load_input
    from aicommons.sdk.receipt import kept_receipt_path

    _check_receipt_target(receipt_path)  # before paying: a bad path must cost nothing
    fee = _units(max_fee, "--max-fee")
    if (input_path is None) == (text is None):
        raise CliError("give the sample as exactly one of --input X or --text TEXT")
    sample = text if input_path is None else load_input(input_path)
    client = _client(rpc, account, node)
    ticket = client.market.request(
        reference,
        sample,
        mode=mode,
        providers=providers,
        provider=provider,
        max_fee=fee,
        ttl_s=ttl,
        blob=blob,
    )
    if ticket.truncated is not None:
        typer.echo(
            f"note: the text has {ticket.truncated.tokens} tokens; truncated to the first "
            f"{ticket.truncated.kept} (the model's max_length)",
            err=True,
        )
    info = client.market.wait(ticket.request_id, timeout_s=timeout) if wait else None
    receipt = client.market.receipt(ticket)
    kept = kept_receipt_path(receipt)
    if receipt_path is not None:
        receipt.save(receipt_path / kept.name if receipt_path.is_dir() else receipt_path)
    shown = info or client.market.request_info(ticket.request_id)
    if as_json:
        print_json(
            {**shown.to_json(), "receipt": str(kept), "truncated": ticket.truncated is not None}
        )
        return
    console.print(f"request {ticket.request_id} ({ticket.mode}) for {ticket.model}: {shown.status}")
    if shown.output is not None:
        console.print(f"  output {shown.output}")
    console.print(f"  receipt kept at {kept}")


@request_app.command("show")
def request_show(
    request_id: int = typer.Argument(..., metavar="ID", min=1),
    rpc: str | None = RpcOption,
    as_json: bool = JsonOption,
) -> None:
    """A request's status, provider, output, fee and window."""
    client = _client(rpc, None, None, signer=False)
    info = client.market.request_info(request_id)
    if as_json:
        print_json(info.to_json())
        return
    for key, value in info.to_json().items():
        console.print(f"{key:12} {value}", highlight=False)


@request_app.command("receipt")
def request_receipt(
    request_id: int = typer.Argument(..., metavar="ID", min=1),
    out: Path = typer.Option(..., "--out", help="Where to save the receipt (a JSON file)."),
    rpc: str | None = RpcOption,
    node: list[str] | None = NodeOption,
    as_json: bool = JsonOption,
) -> None:
    """Rebuild any request's receipt from chain data alone (anyone, any machine); check it with
    `aic verify`."""
    from aicommons.cli.network import _check_receipt_target

    _check_receipt_target(out)
    client = _client(rpc, None, node, signer=False)
    receipt = client.market.receipt_of(request_id)
    target = out / f"{receipt.tx_hash}.json" if out.is_dir() else out
    receipt.save(target)
    if as_json:
        print_json({**receipt.to_json(), "saved": str(target)})
        return
    state = "pending" if receipt.pending else "final"
    console.print(f"receipt of request {request_id} ({state}) saved to {target}")


def register(app: typer.Typer) -> None:
    """Add `provider`, `watch` and `request` to the root `aic` app."""
    app.add_typer(provider_app, name="provider")
    app.add_typer(request_app, name="request")
    app.command("watch")(watch)
