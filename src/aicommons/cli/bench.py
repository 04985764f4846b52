"""`aic bench ...`: benchmark commands. Each measures and prints; none asserts a target.

Each subcommand calls a `run_*` function in its layer's package and prints a table or JSON.
"""

from __future__ import annotations

import typer

from aicommons.cli._common import print_json

bench_app = typer.Typer(
    help="Measure performance of each layer against its reference.", no_args_is_help=True
)


@bench_app.command("devnet")
def bench_devnet(
    transactions: int = typer.Option(
        300, "--transactions", "-n", min=10, help="Timed txs per run."
    ),
    workload: list[str] | None = typer.Option(
        None, "--workload", help="Run only this workload (repeat); default: all of them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Mined transactions per second: our devnet vs hardhat node, same web3.py client."""
    from aicommons.chain.devnet.bench import WORKLOADS, rows_as_dicts, run_devnet_bench
    from aicommons.cli._common import CliError

    unknown = sorted(set(workload or []) - set(WORKLOADS))
    if unknown:
        raise CliError(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    selected = {name: WORKLOADS[name] for name in workload} if workload else None
    rows = rows_as_dicts(run_devnet_bench(selected, transactions=transactions))
    if as_json:
        print_json(rows)
        return
    typer.echo(f"{'workload':<16} {'ours tx/s':>10} {'hardhat tx/s':>13} {'ratio':>7} {'load':>6}")
    for row in rows:
        typer.echo(
            f"{row['workload']:<16} {row['ours_tx_s']:>10.1f} {row['hardhat_tx_s']:>13.1f}"
            f" {row['ratio']:>7.3f} {row['load_1min']:>6.2f}"
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


@bench_app.command("runtime")
def bench_runtime(
    rounds: int = typer.Option(3, "--rounds", min=1, help="Interleaved timing rounds (best kept)."),
    minilm: bool = typer.Option(
        True, "--minilm/--no-minilm", help="Also all-MiniLM-L6-v2 at sequence 128, batch 1 and 32."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Integer runtime vs onnxruntime fp32 and int8 (2 threads each), batch 1 and 256; MiniLM
    at batch 1 and 32 with the cosine of its embeddings to the float model's."""
    from aicommons.cli._common import print_json
    from aicommons.demo import DEMO_DIR, MINILM_CALIB, MINILM_EVAL, minilm_checkpoint_dir
    from aicommons.runtime.bench import run_runtime_bench
    from aicommons.runtime.text import read_text_lines

    extra = {}
    if minilm:
        extra = {
            "minilm_dir": minilm_checkpoint_dir(),
            "minilm_calib": read_text_lines(MINILM_CALIB),
            "minilm_texts": read_text_lines(MINILM_EVAL),
        }
    rows = [row.to_json() for row in run_runtime_bench(DEMO_DIR, rounds=rounds, **extra)]
    if as_json:
        print_json(rows)
        return

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    if rows:
        typer.echo(f"cpu: {rows[0]['cpu']}; ours on the {rows[0]['matmul_path']} path")
    typer.echo(
        f"{'model':<20} {'batch':>5} {'ours ms':>9} {'ort fp32':>9} {'ort int8':>9}"
        f" {'/fp32':>6} {'/int8':>6} {'acc fp':>7} {'acc i8':>7} {'agree':>7} {'load':>5}"
    )
    for row in rows:
        typer.echo(
            f"{row['model']:<20} {row['batch']:>5} {row['ours_ms']:>9.4f}"
            f" {row['ort_fp32_ms']:>9.4f} {row['ort_int8_ms']:>9.4f}"
            f" {row['ratio_vs_ort_fp32']:>6.2f} {row['ratio_vs_ort_int8']:>6.2f}"
            f" {fmt(row['acc_float']):>7} {fmt(row['acc_int8']):>7} {fmt(row['top1_agreement']):>7}"
            f" {row['load_avg_1m']:>5.1f}"
        )
    for row in rows:
        if row["cosine_mean"] is not None:
            typer.echo(
                f"{row['model']} batch {row['batch']}: cosine to the float model mean "
                f"{row['cosine_mean']:.4f}, min {row['cosine_min']:.4f}"
            )
    typer.echo("targets: ours/ORT fp32 <= 1.5 at batch 256 and <= 5 at batch 1; agreement >= 0.99")
    typer.echo("MiniLM: ours/ORT fp32 <= 3.0 at batch 32; cosine mean >= 0.99, min >= 0.97")


@bench_app.command("gas")
def bench_gas(
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON."),
    models: list[str] | None = typer.Option(
        None,
        "--model",
        help="Measure only this model (repeatable): digits-mlp, mlp-64-128-128-10.",
    ),
) -> None:
    """On-chain executor: gas per inference and per MAC, and upload gas (in-process EVM)."""
    from aicommons.chain.gasbench import BENCH_MODELS, GAS_PER_MAC_TARGET, run_gas_bench

    rows = [row.to_json() for row in run_gas_bench(models or tuple(BENCH_MODELS))]
    if as_json:
        print_json(rows)
        return
    typer.echo(
        f"{'model':<20} {'macs':>7} {'infer gas':>10} {'gas/MAC':>8} {'upload gas':>11} {'txs':>4}"
    )
    for row in rows:
        typer.echo(
            f"{row['model']:<20} {row['macs']:>7} {row['infer_gas']:>10} {row['gas_per_mac']:>8.2f}"
            f" {row['upload_gas']:>11} {row['upload_txs']:>4}"
        )
    typer.echo(f"target: gas/MAC <= {GAS_PER_MAC_TARGET} on the digits MLP (stretch <= 20)")


@bench_app.command("governance")
def bench_governance(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Gas of votes, proposals and funding rounds (in-process EVM, cold first-call gas)."""
    from aicommons.governance.bench import run_governance_bench

    figures = run_governance_bench()
    if as_json:
        print_json(figures)
        return
    for key, value in figures.items():
        typer.echo(f"{key:>36}  {value}")
    typer.echo("targets: transfer_votes_ratio <= 2; finalise_gas_per_model <= 60000")


@bench_app.command("economics")
def bench_economics(
    epochs: int = typer.Option(10_000, "--epochs", min=2, help="Epochs simulated per strategy."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Expected profit of honest and cheating compute and storage providers (Monte Carlo)."""
    from aicommons.sdk.governance import run_economics

    report = run_economics(epochs=epochs, seed=seed)
    if as_json:
        print_json(report.to_json())
        return
    typer.echo(
        f"{'role':<8} {'strategy':<17} {'mean AIC/epoch':>15} {'±95%':>9} {'expected':>10}"
        f" {'gain vs honest':>15} {'slashes':>8}"
    )
    for row in report.results:
        typer.echo(
            f"{row.role:<8} {row.strategy:<17} {row.mean_profit / 10**18:>15.4f}"
            f" {row.ci95 / 10**18:>9.4f} {row.expected_profit / 10**18:>10.4f}"
            f" {row.gain_over_honest / 10**18:>15.4f} {row.slashes:>8}"
        )
    for key, value in report.break_even.items():
        typer.echo(f"break-even {key}: {value}")
    typer.echo("cheating pays" if report.cheating_pays else "cheating never pays: every gain < 0")


@bench_app.command("market")
def bench_market(
    model: list[str] | None = typer.Option(
        None, "--model", help="digits-cnn or synthetic-wide (repeat); default: both."
    ),
    settle: bool = typer.Option(
        True, "--settle/--no-settle", help="Also time a dispute on the devnet (settle_s)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Compute market: request, post, finalise and dispute gas (titanoboa), and settle_s — a
    wrong result's post to its slash on the devnet with the watcher daemon running."""
    from aicommons.cli._common import CliError
    from aicommons.market.gasbench import MODELS, measure_market_gas, rounds_target
    from aicommons.market.settlebench import measure_settle_s

    chosen = tuple(model or MODELS)
    unknown = sorted(set(chosen) - set(MODELS))
    if unknown:
        raise CliError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    rows = []
    for row in measure_market_gas(chosen):
        figures = row.to_json()
        figures["rounds_target"] = rounds_target(row)
        if settle:
            package, x = MODELS[row.model]()
            figures["settle_s"] = round(measure_settle_s(row.model, package, x), 1)
        else:
            figures["settle_s"] = None
        rows.append(figures)
    if as_json:
        print_json(rows)
        return
    keys = (
        "macs", "layers", "request_gas", "post_gas_per_request_batch1",
        "post_gas_per_request_batch64", "finalise_gas", "dispute_rounds", "rounds_target",
        "one_step_gas", "dispute_gas_challenger", "dispute_gas_provider", "settle_s",
    )  # fmt: skip
    for row in rows:
        typer.echo(row["model"])
        for key in keys:
            typer.echo(f"  {key:<30} {row[key]}")
    typer.echo(
        "targets: dispute_rounds <= rounds_target; one_step_gas <= 2,000,000 at fan-in 1024; "
        "each side's dispute gas <= 5,000,000; post batch64 <= batch1 / 10; "
        "settle_s <= 60 (digits-cnn)"
    )


@bench_app.command("explorer")
def bench_explorer(
    inferences: int = typer.Option(
        10_000, "--inferences", "-n", min=1, help="On-chain inferences to generate and index."
    ),
    clients: int = typer.Option(20, "--clients", min=1, help="Concurrent page clients."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Explorer: index a devnet of real digits-MLP inferences; page latency under load."""
    from aicommons.explorer.bench import run_explorer_bench

    figures = run_explorer_bench(
        inferences=inferences, clients=clients, progress=lambda m: typer.echo(m, err=True)
    )
    if as_json:
        print_json(figures)
        return
    for key, value in figures.items():
        typer.echo(f"{key:>26}  {value}")
    typer.echo("targets: page_p95_ms <= 150; index_vs_devnet >= 1 (indexing keeps up)")
