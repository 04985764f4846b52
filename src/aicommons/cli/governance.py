"""`aic delegate`, `aic gov ...` (proposals) and `aic fund ...` (quadratic-funding rounds).

Thin: each command parses its arguments, calls one `client.governance` method and prints.
Amounts are AIC with up to 18 decimals (never floats); times are unix timestamps or `+90s`,
`+15m`, `+2d` from the chain's current time.
"""

from __future__ import annotations

import typer
from rich.table import Table

from aicommons.cli._common import console, print_json
from aicommons.cli.network import AccountOption, RpcOption, _client

gov_app = typer.Typer(help="Proposals: propose, vote, queue, execute.", no_args_is_help=True)
fund_app = typer.Typer(help="Quadratic-funding rounds for models.", no_args_is_help=True)
JsonOption = typer.Option(False, "--json", help="Print JSON.")


def _aic(units: int) -> str:
    """Base units as AIC, exactly (no float)."""
    whole, fraction = divmod(units, 10**18)
    return f"{whole}.{fraction:018d}".rstrip("0").rstrip(".") + " AIC"


def delegate(
    delegatee: str | None = typer.Argument(None, metavar="[ADDR]", help="Default: yourself."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Delegate your votes (to yourself by default: tokens vote only once delegated)."""
    client = _client(rpc, account, None)
    tx_hash = client.governance.delegate(delegatee)
    console.print(f"delegated to {delegatee or client.account.address} in tx {tx_hash}")


@gov_app.command("propose")
def propose(
    description: str = typer.Option(..., "--description", help="What and why."),
    call: list[str] = typer.Option(
        ..., "--call", help="TARGET:FUNCTION:ARGS, e.g. ModelRegistry:set_canonical:0x..,0x.."
    ),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Propose calls for the timelock to make (repeat --call for several)."""
    client = _client(rpc, account, None)
    proposal_id = client.governance.propose(client.governance.parse_actions(call), description)
    console.print(f"proposal {proposal_id}")


@gov_app.command("propose-canonical")
def propose_canonical(
    reference: str = typer.Argument(..., metavar="MODEL@VERSION"),
    description: str | None = typer.Option(None, "--description", help="Default: generated."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Propose that MODEL@VERSION becomes the model's canonical version."""
    client = _client(rpc, account, None)
    action = client.governance.canonical_action(reference)
    proposal_id = client.governance.propose([action], description or f"Make {reference} canonical")
    console.print(f"proposal {proposal_id}: {action.summary}")


@gov_app.command("vote")
def vote(
    proposal: str = typer.Argument(..., metavar="ID"),
    choice: str = typer.Argument(..., metavar="for|against|abstain"),
    reason: str | None = typer.Option(None, "--reason", help="Logged with the vote."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Vote on an active proposal with your votes at its snapshot."""
    from aicommons.sdk.governance import parse_proposal_id

    client = _client(rpc, account, None)
    tx_hash = client.governance.vote(parse_proposal_id(proposal), choice, reason=reason)
    console.print(f"voted {choice} in tx {tx_hash}")


def _lifecycle_command(name: str, verb: str):
    def command(
        proposal: str = typer.Argument(..., metavar="ID"),
        rpc: str | None = RpcOption,
        account: str | None = AccountOption,
    ) -> None:
        from aicommons.sdk.governance import parse_proposal_id

        client = _client(rpc, account, None)
        tx_hash = getattr(client.governance, name)(parse_proposal_id(proposal))
        console.print(f"{verb} in tx {tx_hash}")

    command.__doc__ = {
        "queue": "Queue a succeeded proposal in the timelock.",
        "execute": "Execute a queued proposal once its delay has passed.",
        "cancel": "Cancel your own proposal before voting opens.",
    }[name]
    return command


for _name, _verb in (("queue", "queued"), ("execute", "executed"), ("cancel", "canceled")):
    gov_app.command(_name)(_lifecycle_command(_name, _verb))


@gov_app.command("show")
def show(
    proposal: str = typer.Argument(..., metavar="ID"),
    rpc: str | None = RpcOption,
    as_json: bool = JsonOption,
) -> None:
    """A proposal's state, votes, quorum and timing."""
    from aicommons.sdk.governance import parse_proposal_id

    info = _client(rpc, None, None, signer=False).governance.proposal(parse_proposal_id(proposal))
    if as_json:
        print_json(info.to_json())
        return
    console.print(f"proposal {info.id}: [bold]{info.state}[/]  {info.description}")
    quorum = "not fixed until the snapshot" if info.quorum is None else _aic(info.quorum)
    console.print(
        f"  for {_aic(info.for_votes)}  against {_aic(info.against_votes)}  "
        f"abstain {_aic(info.abstain_votes)}  quorum {quorum}"
    )
    console.print(f"  snapshot {info.snapshot}  deadline {info.deadline}  eta {info.eta or '-'}")


@gov_app.command("list")
def list_(rpc: str | None = RpcOption, as_json: bool = JsonOption) -> None:
    """Every proposal of this deployment."""
    found = _client(rpc, None, None, signer=False).governance.proposals()
    if as_json:
        print_json([p.to_json() for p in found])
        return
    table = Table("id", "state", "for", "against", "deadline", "description")
    for info in found:
        table.add_row(
            str(info.id)[:12] + "…",
            info.state,
            _aic(info.for_votes),
            _aic(info.against_votes),
            str(info.deadline),
            info.description[:40],
        )
    console.print(table if found else "no proposals yet")


@fund_app.command("new")
def fund_new(
    pool: str = typer.Option(..., "--pool", help="Matching pool in AIC (decimal)."),
    start: str = typer.Option(..., "--start", help="Unix time or +90s, +15m, +2d."),
    end: str = typer.Option(..., "--end", help="Unix time or +90s, +15m, +2d."),
    cap_bps: int = typer.Option(0, "--cap-bps", min=0, max=10_000, help="Cap per model (bps)."),
    eligibility: str | None = typer.Option(None, "--eligibility", help="is_eligible contract."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    as_json: bool = JsonOption,
) -> None:
    """Open a round funded with --pool from your account; prints the round id."""
    from aicommons.sdk.tokens import parse_units

    units = parse_units(pool, what="--pool")
    client = _client(rpc, account, None)
    round_id = client.governance.open_round(
        pool=units, start=start, end=end, cap_bps=cap_bps, eligibility=eligibility
    )
    if as_json:
        print_json({"round": round_id})
        return
    console.print(f"round {round_id}")


@fund_app.command("contribute")
def fund_contribute(
    round_id: int = typer.Argument(..., metavar="ROUND"),
    model: str = typer.Argument(..., metavar="MODEL"),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="AIC (decimal)."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Contribute AMOUNT AIC to MODEL in ROUND."""
    from aicommons.sdk.tokens import parse_units

    units = parse_units(amount, what="AMOUNT")
    tx_hash = _client(rpc, account, None).governance.contribute(round_id, model, units)
    console.print(f"contributed {amount} AIC to {model} in tx {tx_hash}")


@fund_app.command("finalise")
def fund_finalise(
    round_id: int = typer.Argument(..., metavar="ROUND"),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Compute the matches of an ended round (anyone may, once)."""
    tx_hash = _client(rpc, account, None).governance.finalise(round_id)
    console.print(f"finalised round {round_id} in tx {tx_hash}")


@fund_app.command("show")
def fund_show(
    round_id: int = typer.Argument(..., metavar="ROUND"),
    rpc: str | None = RpcOption,
    as_json: bool = JsonOption,
) -> None:
    """A round: pool, state and every model's contributions and match."""
    info = _client(rpc, None, None, signer=False).governance.round(round_id)
    if as_json:
        print_json(info.to_json())
        return
    console.print(
        f"round {info.round}: [bold]{info.state}[/]  pool {_aic(info.pool)}  "
        f"{info.start} .. {info.end}  cap {info.cap_bps} bps"
    )
    table = Table("model", "total", "contributors", "sqrt sum", "raw", "match", "claimed")
    for p in info.projects:
        table.add_row(
            p.model,
            _aic(p.total),
            str(p.contributors),
            str(p.sqrt_sum),
            str(p.raw),
            _aic(p.match),
            "yes" if p.claimed else "no",
        )
    console.print(table if info.projects else "no contributions yet")


@fund_app.command("claim")
def fund_claim(
    round_id: int | None = typer.Argument(None, metavar="[ROUND]"),
    model: str | None = typer.Argument(None, metavar="[MODEL]"),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Release what finalised rounds owe you (your models' attribution) and withdraw it."""
    amount = _client(rpc, account, None).governance.claim(round_id, model)
    console.print(f"withdrew {_aic(amount)}")


def register(app: typer.Typer) -> None:
    """Add `delegate`, `gov` and `fund` to the root `aic` app."""
    app.command("delegate")(delegate)
    app.add_typer(gov_app, name="gov")
    app.add_typer(fund_app, name="fund")
