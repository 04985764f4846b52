"""Chain-facing commands: deploy, publish, models, infer, verify, transfer, up, down.

Each parses options, builds an `aicommons.Client` and calls one SDK function. `--rpc` defaults to
the running `aic up` network, busy or not (else 127.0.0.1:8545, and errors say why that one);
`--account` defaults to `dev0` on a devnet.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import typer
from rich.table import Table

from aicommons.cli._common import CliError, console, err_console, print_json

UP_WINDOW_S = 10
"""The challenge window `aic up` deploys the market with: long enough for the watcher to
re-execute and dispute, short enough that the demo's request is final within seconds."""

RpcOption = typer.Option(None, "--rpc", help="JSON-RPC URL (default: the running local network).")
AccountOption = typer.Option(
    None, "--account", help="Account name (default on a devnet: dev0). Password: AIC_PASSWORD."
)
NodeOption = typer.Option(None, "--node", help="Storage node URL (repeat for several).")


def _client(rpc: str | None, account: str | None, nodes: list[str] | None, signer: bool = True):
    from aicommons.cli.account import ask_password
    from aicommons.sdk.client import Client, resolve_account
    from aicommons.sdk.errors import ClientError
    from aicommons.sdk.network import network_answers, resolve_endpoint

    endpoint = resolve_endpoint(rpc, nodes or ())
    if endpoint.network is not None and not network_answers(endpoint.network):
        err_console.print(f"the local network at {endpoint.rpc_url} is busy; waiting for it")
    try:
        client = Client(endpoint.rpc_url, storage_nodes=list(endpoint.storage_urls))
    except ClientError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise CliError(f"{reason} ({endpoint.origin})") from None
    if signer:
        client.account = resolve_account(
            client.chain_id, account, password=lambda: ask_password(confirm=False), require=True
        )
    return client


def deploy(
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    allocate: list[str] | None = typer.Option(
        None,
        "--allocate",
        help="ADDRESS:AIC holding votes from the start (repeat); the rest "
        "of the supply goes to the treasury. Required off development chains.",
    ),
    voting_delay: str | None = typer.Option(None, "--voting-delay", help="e.g. 1d (default)."),
    voting_period: str | None = typer.Option(None, "--voting-period", help="e.g. 7d (default)."),
    timelock_delay: str | None = typer.Option(None, "--timelock-delay", help="e.g. 2d."),
    late_quorum_extension: str | None = typer.Option(None, "--late-quorum-extension"),
    grace_period: str | None = typer.Option(None, "--grace-period", help="e.g. 14d."),
    quorum_bps: int | None = typer.Option(None, "--quorum-bps", min=0, max=10_000),
    proposal_threshold: str | None = typer.Option(None, "--proposal-threshold", help="AIC."),
) -> None:
    """Deploy the contract suite and its governance (no-op if this chain already has a live
    deployment). Off development chains the periods are realistic unless given here."""
    from aicommons.governance.deploy import Allocation
    from aicommons.governance.proposals import parse_duration
    from aicommons.sdk.deployment import deploy_suite, deployment_path
    from aicommons.sdk.tokens import parse_units

    overrides: dict[str, int] = {}
    for name, value in (
        ("voting_delay", voting_delay),
        ("voting_period", voting_period),
        ("timelock_delay", timelock_delay),
        ("late_quorum_extension", late_quorum_extension),
        ("grace_period", grace_period),
    ):
        if value is not None:
            overrides[name] = parse_duration(value)
    if quorum_bps is not None:
        overrides["quorum_bps"] = quorum_bps
    if proposal_threshold is not None:
        overrides["proposal_threshold"] = parse_units(
            proposal_threshold, what="--proposal-threshold"
        )
    allocations = None
    if allocate:
        allocations = []
        for item in allocate:
            address, sep, amount = item.rpartition(":")
            if not sep or not address:
                raise CliError(f"--allocate takes ADDRESS:AIC, got {item!r}")
            allocations.append(Allocation(address, parse_units(amount, what="--allocate")))
    client = _client(rpc, account, None)
    deployment, created = deploy_suite(
        client.w3, client.account, governance_overrides=overrides, allocations=allocations
    )
    verb = "deployed" if created else "already deployed"
    for name, address in deployment.contracts.items():
        console.print(f"{verb} {name:16} {address}")
    console.print(
        f"deployment file: {deployment_path(deployment.chain_id, deployment.genesis_hash)}"
    )


def _attribution(values: list[str] | None, role: str):
    from aicommons.sdk.client import Attribution

    entries = []
    for value in values or []:
        address, sep, bps = value.rpartition(":")
        if not sep or not bps.isdigit():
            raise CliError(f"--{role.replace('_', '-')} takes ADDRESS:BPS, got {value!r}")
        entries.append(Attribution(address, role, int(bps)))
    return entries


def publish(
    package: Path = typer.Argument(..., metavar="PKG", help="Model package (.aicm)."),
    model: str = typer.Option(..., "--model", help="Model name (slug), registered if new."),
    licence: str = typer.Option("MIT", "--license", help="SPDX licence identifier."),
    author: list[str] | None = typer.Option(None, "--author", help="ADDRESS:BPS (repeat)."),
    data_provider: list[str] | None = typer.Option(
        None, "--data-provider", help="ADDRESS:BPS (repeat)."
    ),
    fee: int = typer.Option(0, "--fee", min=0, help="Fee per inference in token units."),
    onchain: bool = typer.Option(False, "--onchain", help="Upload to the on-chain executor."),
    mode: list[str] | None = typer.Option(
        None,
        "--mode",
        help="Verification mode offered: onchain, optimistic, redundant (repeat; default: "
        "onchain with --onchain, plus the market's two when it can check the model).",
    ),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Publish a model version: storage, registry, and (with --onchain) the executor."""
    client = _client(rpc, account, node)
    attribution = _attribution(author, "author") + _attribution(data_provider, "data_provider")
    result = client.registry.publish(
        package,
        model=model,
        licence=licence,
        attribution=attribution,
        fee=fee,
        onchain=onchain,
        modes=mode or None,
    )
    if as_json:
        print_json(result.to_json())
        return
    console.print(f"published [bold]{result.model}[/] version {result.version_id}")
    console.print(f"  weights root {result.weights_root}")
    console.print(f"  stored as blob {result.blob_id} on {', '.join(result.stored_on)}")
    if result.onchain_upload_gas is not None:
        console.print(f"  uploaded on-chain ({result.onchain_upload_gas:,} gas)")
    console.print(f"  modes {', '.join(result.modes)}")
    if result.graph_root is not None:
        console.print(f"  graph root {result.graph_root}")


def models(
    rpc: str | None = RpcOption, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List registered models and their versions."""
    client = _client(rpc, None, None, signer=False)
    found = client.registry.models()
    if as_json:
        print_json([m.to_json() for m in found])
        return
    table = Table("model", "versions", "canonical / latest", "on-chain")
    for info in found:
        latest = info.versions[-1] if info.versions else None
        table.add_row(
            info.name,
            str(len(info.versions)),
            latest.version_id[:18] + "…" if latest else "-",
            "yes" if latest and latest.onchain_ready else "no",
        )
    console.print(table if found else "no models registered yet")


def show(
    reference: str = typer.Argument(..., metavar="NAME[@VERSION]"),
    rpc: str | None = RpcOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a registered model and its versions (or one version)."""
    from aicommons.sdk.registry import parse_reference

    client = _client(rpc, None, None, signer=False)
    name, version = parse_reference(reference)
    info = client.registry.resolve(reference) if version else client.registry.model(name)
    payload = info.to_json()
    if as_json:
        print_json(payload)
        return
    console.print_json(json.dumps(payload))


def infer(
    reference: str = typer.Argument(..., metavar="NAME[@VERSION]"),
    input_path: Path = typer.Option(..., "--input", help="One sample: X.npy or X.json."),
    receipt_path: Path | None = typer.Option(
        None, "--receipt", help="Also save the receipt here (a file, or a directory)."
    ),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
    node: list[str] | None = NodeOption,
    as_json: bool = typer.Option(False, "--json", help="Print the receipt as JSON."),
) -> None:
    """Run a model on-chain; the Inference event is the receipt.

    Every receipt is kept under $AIC_HOME/receipts; --receipt saves a copy where you say.
    """
    from aicommons.sdk.receipt import kept_receipt_path

    _check_receipt_target(receipt_path)  # before paying: a bad path must cost nothing
    from aicommons.runtime.files import load_input

    sample = load_input(input_path)
    client = _client(rpc, account, node)
    receipt = client.inference.infer(reference, sample)
    kept = kept_receipt_path(receipt)
    copy_error = None
    if receipt_path is not None:
        target = receipt_path / kept.name if receipt_path.is_dir() else receipt_path
        try:
            receipt.save(target)
        except OSError as exc:
            copy_error = (
                f"could not save the receipt to {target}: {exc.strerror}; it is kept at {kept}"
            )
    if as_json:
        print_json(receipt.to_json())
    else:
        console.print(f"label [bold]{receipt.label}[/]  output {receipt.output}")
        console.print(f"tx {receipt.tx_hash} in block {receipt.block_number}")
        console.print(f"receipt kept at {kept}")
        if receipt_path is not None and copy_error is None:
            console.print(f"receipt saved to {target}")
    if copy_error is not None:
        raise CliError(copy_error)


def _check_receipt_target(path: Path | None) -> None:
    """A --receipt path must be a directory or a file in an existing directory."""
    if path is None or path.is_dir():
        return
    if not path.parent.is_dir():
        raise CliError(f"--receipt {path}: directory {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise CliError(f"--receipt {path} is neither a file nor a directory")


def verify(
    receipt_path: Path = typer.Argument(..., metavar="RECEIPT.json"),
    rpc: str | None = RpcOption,
    node: list[str] | None = NodeOption,
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
    confirmations: int | None = typer.Option(
        None, "--confirmations", min=1, help="Blocks needed (default: per chain, 1 on devnets)."
    ),
    allow_pending: bool = typer.Option(
        False, "--allow-pending", help="Market receipts: accept a result not yet final."
    ),
) -> None:
    """Check a receipt: chain, confirmations, event, registry, storage, bit-exact re-execution."""
    from aicommons.sdk.receipt import load_receipt

    receipt = load_receipt(receipt_path)
    client = _client(rpc, None, node, signer=False)
    report = client.verify(receipt, confirmations=confirmations, allow_pending=allow_pending)
    if as_json:
        print_json(report.to_json())
    else:
        for check in report.checks:
            mark = "[green]pass[/]" if check.ok else "[red]FAIL[/]"
            console.print(f"{mark}  {check.name:12} {check.detail}", highlight=False)
        console.print("receipt verified" if report.ok else f"failed: {', '.join(report.failed())}")
    if not report.ok:
        raise typer.Exit(1)


def transfer(
    to: str = typer.Argument(..., help="Recipient address."),
    eth: str = typer.Option("0", "--eth", help="Ether to send (decimal, e.g. 0.5)."),
    tokens: str = typer.Option("0", "--tokens", help="CommonsToken (AIC) to send (decimal)."),
    rpc: str | None = RpcOption,
    account: str | None = AccountOption,
) -> None:
    """Send ether and/or AIC tokens (e.g. to fund a new account on a devnet)."""
    from aicommons.sdk.tokens import parse_units

    eth_wei, token_units = parse_units(eth, what="--eth"), parse_units(tokens, what="--tokens")
    client = _client(rpc, account, None)
    hashes = client.tokens.transfer(to, eth_wei=eth_wei, tokens=token_units)
    if not hashes:
        raise CliError("nothing to send: give --eth and/or --tokens")
    for tx_hash in hashes:
        console.print(f"sent in tx {tx_hash}")


def up(
    detach: bool = typer.Option(False, "--detach", help="Leave the network running and return."),
    port: int | None = typer.Option(None, "--port", help="Devnet port (default: a free one)."),
) -> None:
    """Start the local network, deploy, publish the demo models, infer and verify a sample on
    chain, and serve one through the compute market (a provider and a watcher daemon); then
    prepare the `aic search` demo (MiniLM) in the background."""
    from aicommons.chain.accounts import load_account
    from aicommons.chain.deploy import MarketParams
    from aicommons.sdk.client import Client
    from aicommons.sdk.demo import run_demo, start_search_demo, stop_search_demo
    from aicommons.sdk.deployment import deploy_suite
    from aicommons.sdk.network import start_network, stop_network

    # Ctrl-C must stop the network even when a parent started us with SIGINT ignored (as a
    # non-interactive shell does for background jobs); SIGTERM gets the same clean shutdown.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    state, reused = start_network(port)
    try:
        console.print(
            f"{'reusing' if reused else 'started'} devnet {state.rpc_url} "
            f"and storage node {state.storage_url}"
        )
        console.print(
            "[bold yellow]dev0..dev9 are DEVELOPMENT KEYS ONLY — never use them on a real "
            "network.[/]"
        )
        client = Client(
            state.rpc_url, account=load_account("dev0", None), storage_nodes=[state.storage_url]
        )
        deployment, created = deploy_suite(
            client.w3, client.account, market_params=MarketParams(window=UP_WINDOW_S)
        )
        console.print(f"{'deployed' if created else 'found'} contracts: {deployment.contracts}")
        demo = run_demo(client)
        for result in demo.published:
            console.print(f"published {result.model} {result.version_id}")
        console.print(
            f"on-chain inference of digits-mlp on a held-out digit (true label "
            f"{demo.expected_label}): label {demo.receipt.label}, tx {demo.receipt.tx_hash}"
        )
        for check in demo.report.checks:
            console.print(f"  {'pass' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        if not demo.report.ok:
            raise CliError(f"the sample receipt failed verification: {demo.report.failed()}")
        console.print(f"receipt: {demo.receipt_path}")
        state = _start_explorer(state)
        console.print(f"explorer: {state.explorer_url}", highlight=False)
        state, market = _market_demo(client, state)
        search_pid = start_search_demo(state.rpc_url, state.storage_url)
        console.print(
            f"search demo: preparing all-MiniLM-L6-v2 in the background (pid {search_pid}; "
            'log in $AIC_HOME/search-demo.log); try `aic search "QUERY"`'
        )
        console.print(
            "\nnext: aic models | aic model show digits-mlp | "
            f"aic verify {demo.receipt_path} | aic infer digits-mlp --input X.json --receipt r.json"
        )
        console.print(
            f"      aic request digits-cnn --input X.json --wait --receipt r.json | "
            f"aic request show {market.receipt.request_id} | "
            f"aic provider show {market.receipt.provider} | aic verify {market.receipt_path}"
        )
    except BaseException:
        if not reused and not detach:
            stop_search_demo()
            stop_network()
        raise
    if detach:
        console.print("network left running; stop it with `aic down`")
        return
    console.print("network running; press Ctrl-C to stop")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_search_demo()
        stop_network()
        console.print("network stopped")


def _start_explorer(state):
    """The network's explorer: the recorded one if alive, else a new child process."""
    from aicommons.explorer.server import launch_explorer_process, pick_port
    from aicommons.home import state_dir
    from aicommons.sdk.network import HOST, record_explorer, running_explorer

    if running_explorer(state):
        return state
    process, url = launch_explorer_process(
        state.rpc_url,
        port=pick_port(HOST),
        storage_nodes=[state.storage_url],
        log_path=state_dir() / "explorer.log",
    )
    return record_explorer(state, pid=process.pid, url=url)


def _market_demo(client, state):
    """Start the market daemons and request a digits-CNN prediction through the market."""
    from aicommons.chain.accounts import load_account
    from aicommons.sdk.client import Client
    from aicommons.sdk.demo import (
        DEMO_PROVIDER,
        DEMO_WATCHER,
        prepare_market_demo,
        run_market_demo,
    )
    from aicommons.sdk.network import start_market_daemons

    provider = Client(
        state.rpc_url, account=load_account(DEMO_PROVIDER, None), storage_nodes=[state.storage_url]
    )
    watcher = load_account(DEMO_WATCHER, None).address
    prepare_market_demo(client, provider=provider, watcher_address=watcher)
    state = start_market_daemons(
        state, provider=DEMO_PROVIDER, watcher=DEMO_WATCHER, models=("digits-cnn",)
    )
    console.print(
        f"market: provider {DEMO_PROVIDER} ({provider.account.address}) and watcher "
        f"{DEMO_WATCHER} ({watcher}) running; logs in $AIC_HOME/provider.log, watcher.log"
    )
    market = run_market_demo(client)
    receipt = market.receipt
    console.print(
        f"market request {receipt.request_id} for digits-cnn (true label "
        f"{market.expected_label}): label {market.label}, served by {receipt.provider}, "
        f"finalised in tx {receipt.finalise_tx}"
    )
    for check in market.report.checks:
        console.print(f"  {'pass' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if not market.report.ok:
        raise CliError(f"the market receipt failed verification: {market.report.failed()}")
    console.print(f"market receipt: {market.receipt_path}")
    return state, market


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def down() -> None:
    """Stop a network started with `aic up --detach`."""
    from aicommons.sdk.demo import stop_search_demo
    from aicommons.sdk.network import stop_network

    stop_search_demo()
    state = stop_network()
    console.print("stopped the local network" if state else "no local network is running")


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add these commands to the root `aic` app (and `show` to the `aic model` group)."""
    for command in (deploy, publish, models, infer, verify, transfer, up, down):
        app.command(command.__name__)(command)
    model_app.command("show")(show)
