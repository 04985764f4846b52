"""`aic storage ...`: run a storage node, put and get blobs, check a store, answer challenges.

Thin wrappers over aicommons.storage; progress bars and warnings go to stderr, results to stdout.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from aicommons.cli._common import CliError, err_console, print_json
from aicommons.home import state_dir

storage_app = typer.Typer(help="Content-addressed storage: nodes, put, get.", no_args_is_help=True)

NODE_OPTION = typer.Option(
    None, "--node", help="Storage node URL (repeat for several).", show_default=False
)


def _nodes(nodes: list[str] | None) -> list[str]:
    from aicommons.storage.client import DEFAULT_NODE

    return [n.rstrip("/") for n in nodes] if nodes else [DEFAULT_NODE]


def _default_dir() -> Path:
    return state_dir("storage")


def load_signer(keystore: Path | None, account: str | None) -> LocalAccount:
    """The uploader's key: an eth-account keystore file or a named `aic account`.

    The password comes from $AIC_PASSWORD, else an interactive prompt.
    """
    password = os.environ.get("AIC_PASSWORD")
    if keystore is not None:
        if password is None:
            password = getpass.getpass(f"password for {keystore}: ")
        try:
            key = Account.decrypt(json.loads(keystore.read_text()), password)
        except ValueError as exc:
            raise CliError(f"cannot unlock keystore {keystore}: {exc}") from None
        return Account.from_key(key)
    if account is not None:
        from aicommons.chain.accounts import is_dev_account, load_account

        if password is None and not is_dev_account(account):
            password = getpass.getpass(f"password for account {account}: ")
        return load_account(account, password)
    raise CliError("uploads are signed: give --keystore FILE or --account NAME")


@contextmanager
def _progress(description: str) -> Iterator[tuple[Progress, int]]:
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    with progress:
        yield progress, progress.add_task(description, total=None)


@storage_app.command()
def serve(
    directory: Path | None = typer.Option(None, "--dir", help="Store directory."),
    port: int = typer.Option(8470, "--port", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (default loopback)."),
    max_upload_mb: int = typer.Option(4096, "--max-upload-mb", help="Largest signed upload."),
    allow: list[str] | None = typer.Option(
        None, "--allow", help="Uploader address allowed to write (repeat); default any signer."
    ),
    public_url: list[str] | None = typer.Option(
        None,
        "--public-url",
        help="URL clients use to reach this node (repeat); upload grants must name it. "
        "Default on loopback: http://127.0.0.1:PORT and http://localhost:PORT.",
    ),
    chain_id: int | None = typer.Option(
        None, "--chain-id", help="Chain id upload grants must name (the chain this node serves)."
    ),
) -> None:
    """Run a storage node (HTTP) until Ctrl-C."""
    from aicommons.storage.node import node_origins
    from aicommons.storage.node import serve as serve_node

    store_dir = directory or _default_dir()
    origins = node_origins(host, port, public_url or ())
    err_console.print(
        f"storage node on http://{host}:{port} ({', '.join(origins)}) serving {store_dir}"
    )
    serve_node(
        store_dir,
        host,
        port,
        max_upload_mb << 20,
        list(allow) if allow else None,
        public_urls=origins,
        chain_id=chain_id,
    )


@storage_app.command()
def put(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="File to store."),
    node: list[str] | None = NODE_OPTION,
    keystore: Path | None = typer.Option(None, "--keystore", help="eth-account keystore JSON."),
    account: str | None = typer.Option(None, "--account", help="Named account (aic account)."),
    parallel: int = typer.Option(8, "--parallel", min=1, help="Chunks in flight."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Store FILE on every given node; prints the blob id."""
    from aicommons.storage.client import put_file

    signer = load_signer(keystore, account)
    nodes = _nodes(node)
    with _progress(f"put {file.name}") as (progress, task):
        progress.update(task, total=file.stat().st_size)
        result = put_file(file, nodes, signer, parallel, lambda n: progress.advance(task, n))
    for line in result.report.lines():
        err_console.print(f"[yellow]warning:[/] node {line}", highlight=False)
    if as_json:
        print_json(
            {
                "blob_id": result.blob_id,
                "root": "0x" + result.manifest.root.hex(),
                "size": result.manifest.size,
                "chunks": len(result.manifest.chunks),
                "stored_on": result.stored_on,
                "bad_nodes": result.report.problems,
            }
        )
    else:
        typer.echo(result.blob_id)


@storage_app.command()
def get(
    blob_id: str = typer.Argument(..., help="Blob id (0x...)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the blob."),
    node: list[str] | None = NODE_OPTION,
    parallel: int = typer.Option(8, "--parallel", min=1, help="Chunks in flight."),
    max_mb: int = typer.Option(
        4096, "--max-mb", min=1, help="Refuse a blob larger than this many MiB."
    ),
) -> None:
    """Download a blob, verifying every chunk; resumes an interrupted download."""
    from aicommons.storage.client import get_blob

    with _progress(f"get {output.name}") as (progress, task):
        result = get_blob(
            blob_id,
            output,
            _nodes(node),
            parallel,
            on_progress=lambda n: progress.advance(task, n),
            on_manifest=lambda m: progress.update(task, total=m.size),
            max_bytes=max_mb << 20,
        )
    for line in result.report.lines():
        err_console.print(f"[yellow]warning:[/] node {line}", highlight=False)
    typer.echo(str(result.path))


@storage_app.command()
def verify(
    directory: Path | None = typer.Option(None, "--dir", help="Store directory."),
) -> None:
    """Re-check every chunk and blob of a local store."""
    from aicommons.storage.store import LocalStore

    store = LocalStore(directory or _default_dir())
    problems = store.verify_all()
    for line in problems:
        err_console.print(line, highlight=False)
    if problems:
        raise CliError(f"{len(problems)} problem(s) in {store.directory}")
    typer.echo(f"ok: {len(store.blob_ids())} blob(s), every chunk verified")


@storage_app.command()
def provide(
    rpc: str = typer.Option("http://127.0.0.1:8545", "--rpc", help="Ethereum JSON-RPC URL."),
    registry: str = typer.Option(..., "--registry", help="StorageRegistry address."),
    directory: Path | None = typer.Option(None, "--dir", help="Store directory."),
    keystore: Path | None = typer.Option(None, "--keystore", help="eth-account keystore JSON."),
    account: str | None = typer.Option(None, "--account", help="Named account (aic account)."),
    commit_stored: bool = typer.Option(
        False, "--commit-stored", help="First commit every stored blob not yet committed."
    ),
    from_block: int | None = typer.Option(
        None, "--from-block", help="First block to scan for challenges (default: head)."
    ),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between polls."),
) -> None:
    """Answer StorageRegistry challenges from the local store until Ctrl-C."""
    import threading

    from web3 import Web3

    from aicommons.storage.registry import ProviderDaemon, RegistryClient, wait_for_rpc
    from aicommons.storage.store import LocalStore

    signer = load_signer(keystore, account)
    w3 = Web3(Web3.HTTPProvider(rpc))
    wait_for_rpc(w3)
    client = RegistryClient(w3, registry, signer)
    start = w3.eth.block_number if from_block is None else from_block
    daemon = ProviderDaemon(
        client,
        LocalStore(directory or _default_dir()),
        start,
        report=lambda line: err_console.print(line, highlight=False),
    )
    if commit_stored:
        daemon.commit_stored()
    err_console.print(f"provider {signer.address} watching {registry} from block {start}")
    stop = threading.Event()
    try:
        daemon.run(stop, interval)
    except KeyboardInterrupt:
        stop.set()
