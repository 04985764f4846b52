"""The governance lifecycle through the `aic` CLI on an in-process devnet deployed as `aic up`
deploys it (devnet periods, dev accounts delegated, the registry owned by the timelock):
canonical version changed by a proposal, defeated, canceled, expired, late quorum, execute
before the delay, funding rounds, and every bad input as one line naming the revert.

Time moves with evm_mine at a chosen timestamp (`Cli.advance`), and `aic devnet advance`
(evm_increaseTime + evm_mine) is used once, where the margin allows. The tests share one chain
and run in file order: the funding round pays the canonical version the first test set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from aicommons.chain.accounts import import_account, load_account
from aicommons.chain.devnet import DevnetServer
from aicommons.chain.devnet.control import mine
from aicommons.cli import app
from aicommons.commit import keccak256
from aicommons.errors import AicommonsError
from aicommons.governance.params import DEVNET_PARAMS
from aicommons.sdk.client import Client
from aicommons.sdk.deployment import deploy_suite

pytestmark = pytest.mark.network

SLUG = "gov-demo"
VERSIONS = [keccak256(b"gov-demo v1"), keccak256(b"gov-demo v2")]
OUTSIDER_KEY = "0x" + "5a" * 32


class Cli:
    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        self.runner = CliRunner()

    def invoke(self, *args: str, account: str | None = None):
        argv = [*args, "--rpc", self.rpc_url]
        if account:
            argv += ["--account", account]
        return self.runner.invoke(app, argv)

    def run(self, *args: str, account: str | None = None) -> str:
        result = self.invoke(*args, account=account)
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    def refused(self, reason: str, *args: str, account: str | None = None) -> None:
        """The command fails with an expected error (which `aic` prints as its one line,
        `cli._common.run_cli`) naming `reason`."""
        result = self.invoke(*args, account=account)
        assert result.exit_code != 0, result.output
        error = result.exception
        assert isinstance(error, AicommonsError), repr(error)
        assert reason in str(error) and "\n" not in str(error).strip(), str(error)

    def advance(self, seconds: int) -> None:
        """Mine a block `seconds` after the chain's latest (evm_mine with a timestamp): the
        devnet's clock runs ahead of the wall clock after a burst of transactions (each block at
        least a second after its parent), where `aic devnet advance --seconds`, which moves the
        offset from the wall clock as hardhat does, would move it less."""
        mine(self.rpc_url, timestamp=self.now() + seconds)

    def now(self) -> int:
        return Client(self.rpc_url).governance.chain_time()

    def propose_canonical(self, version: bytes, description: str) -> str:
        output = self.run(
            "gov",
            "propose-canonical",
            f"{SLUG}@0x{version.hex()[:12]}",
            "--description",
            description,
        )
        match = re.search(r"proposal\s+(\d+)", output)
        assert match, output
        return match.group(1)

    def show(self, proposal_id: str) -> dict:
        return json.loads(self.run("gov", "show", proposal_id, "--json"))


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("aic-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("AIC_HOME", str(home))
    patch.setenv("AIC_PASSWORD", "outsider-password")
    devnet = DevnetServer(home / "devnet", port=0).start()
    try:
        client = Client(devnet.url, account=load_account("dev0", None))
        deployment, _ = deploy_suite(client.w3, client.account)
        maintainer = Client(devnet.url, account=load_account("dev1", None))
        registry = maintainer.contract("ModelRegistry")
        model_id = keccak256(SLUG.encode())
        send = maintainer.registry._transact
        send(registry.functions.register_model(SLUG, []), "register")
        author = [(maintainer.account.address, 1, 8_000)]
        for version in VERSIONS:
            call = registry.functions.publish_version(
                model_id, version, keccak256(version), bytes(32), ["ipfs://x"], "MIT", author, 4, 0
            )
            send(call, "publish")
        import_account("outsider", OUTSIDER_KEY, "outsider-password")
        yield Cli(devnet.url)
    finally:
        devnet.stop()
        patch.undo()


def test_dev_accounts_vote_from_the_start(cli):
    client = Client(cli.rpc_url)
    for index in range(10):
        votes, delegate = client.governance.voting_power(load_account(f"dev{index}", None).address)
        assert votes > 0 and delegate == load_account(f"dev{index}", None).address


def test_a_proposal_changes_the_canonical_version(cli):
    proposal_id = cli.propose_canonical(VERSIONS[1], "make v2 canonical")
    shown = cli.show(proposal_id)
    assert shown["state"] == "pending" and shown["quorum"] is None
    assert set(shown) >= {"id", "state", "for", "against", "abstain", "quorum", "snapshot"}
    assert {"deadline", "eta"} <= set(shown)
    cli.refused("ProposalNotActive", "gov", "vote", proposal_id, "for")  # before the period
    cli.advance(DEVNET_PARAMS.voting_delay + 1)
    cli.run("gov", "vote", proposal_id, "for", "--reason", "tested it")
    cli.refused("AlreadyVoted", "gov", "vote", proposal_id, "against")
    cli.refused("ProposalNotQueued", "gov", "execute", proposal_id)
    cli.run("devnet", "advance", "--seconds", "1")
    cli.advance(DEVNET_PARAMS.voting_period + DEVNET_PARAMS.late_quorum_extension + 1)
    cli.refused("ProposalNotActive", "gov", "vote", proposal_id, "for", account="dev2")
    assert cli.show(proposal_id)["state"] == "succeeded"
    cli.run("gov", "queue", proposal_id)
    cli.refused("ProposalNotReady", "gov", "execute", proposal_id)  # before the delay
    cli.advance(DEVNET_PARAMS.timelock_delay + 1)
    cli.run("gov", "execute", proposal_id)
    shown = cli.show(proposal_id)
    assert shown["state"] == "executed" and int(shown["eta"]) > 0
    model = json.loads(cli.run("model", "show", SLUG, "--json"))
    canonical = [v["version_id"] for v in model["versions"] if v["canonical"]]
    assert canonical == ["0x" + VERSIONS[1].hex()]
    assert proposal_id in [p["id"] for p in json.loads(cli.run("gov", "list", "--json"))]
    assert "executed" in cli.run("gov", "list")


def test_defeated_without_quorum(cli):
    proposal_id = cli.propose_canonical(VERSIONS[0], "nobody cares")
    cli.advance(DEVNET_PARAMS.voting_delay + DEVNET_PARAMS.voting_period + 1)
    assert cli.show(proposal_id)["state"] == "defeated"
    cli.refused("ProposalNotSucceeded", "gov", "queue", proposal_id)


def test_canceled_by_its_proposer(cli):
    proposal_id = cli.propose_canonical(VERSIONS[0], "changed my mind")
    cli.refused("NotProposer", "gov", "cancel", proposal_id, account="dev3")
    cli.run("gov", "cancel", proposal_id)
    assert cli.show(proposal_id)["state"] == "canceled"


def test_expired_when_not_executed_in_time(cli):
    proposal_id = cli.propose_canonical(VERSIONS[0], "forgotten")
    cli.advance(DEVNET_PARAMS.voting_delay + 1)
    cli.run("gov", "vote", proposal_id, "for")
    cli.advance(DEVNET_PARAMS.voting_period + DEVNET_PARAMS.late_quorum_extension + 1)
    cli.run("gov", "queue", proposal_id)
    cli.advance(DEVNET_PARAMS.timelock_delay + DEVNET_PARAMS.grace_period + 1)
    assert cli.show(proposal_id)["state"] == "expired"
    cli.refused("ProposalExpired", "gov", "execute", proposal_id)


def test_late_quorum_extends_the_vote(cli):
    proposal_id = cli.propose_canonical(VERSIONS[0], "late swing")
    deadline = cli.show(proposal_id)["deadline"]
    # Vote 20 s before the deadline (the chain's clock also follows the wall clock, so leave
    # room): quorum comes late and the deadline moves to the vote's time + the extension.
    cli.advance(deadline - 20 - cli.now())
    cli.run("gov", "vote", proposal_id, "for", account="dev4")
    extended = cli.show(proposal_id)["deadline"]
    assert extended > deadline
    cli.advance(deadline + 1 - cli.now())  # past the original deadline
    assert cli.now() <= extended
    assert cli.show(proposal_id)["state"] == "active"


def test_propose_below_the_threshold(cli):
    cli.refused(
        "BelowProposalThreshold",
        "gov",
        "propose-canonical",
        f"{SLUG}@0x{VERSIONS[0].hex()[:12]}",
        account="outsider",
    )


def test_bad_proposal_input_is_one_line(cli):
    cli.refused("TARGET:FUNCTION:ARGS", "gov", "propose", "--description", "x", "--call", "oops")
    cli.refused("vote 'maybe'", "gov", "vote", "1", "maybe")
    cli.refused("no proposal", "gov", "show", "12345")


def test_a_funding_round_through_the_cli(cli):
    round_id = json.loads(
        cli.run("fund", "new", "--pool", "1000", "--start", "+0s", "--end", "+60s", "--json")
    )["round"]
    cli.run("fund", "contribute", str(round_id), SLUG, "2.5", account="dev2")
    cli.run("fund", "contribute", str(round_id), SLUG, "4", account="dev3")
    cli.refused("UnknownModel", "fund", "contribute", str(round_id), "no-such-model", "1")
    cli.refused("RoundNotEnded", "fund", "finalise", str(round_id))
    cli.advance(61)
    cli.refused("RoundEnded", "fund", "contribute", str(round_id), SLUG, "1", account="dev2")
    cli.run("fund", "finalise", str(round_id))
    cli.refused("AlreadyFinalised", "fund", "finalise", str(round_id))
    shown = json.loads(cli.run("fund", "show", str(round_id), "--json"))
    assert {"round", "pool", "state", "projects"} <= set(shown) and shown["state"] == "finalised"
    (project,) = shown["projects"]
    assert {"model", "total", "contributors", "sqrt_sum", "raw", "match"} <= set(project)
    assert project["model"] == SLUG and project["contributors"] == 2
    assert int(project["total"]) == 6_500_000_000_000_000_000 and int(project["match"]) > 0
    assert "withdrew" in cli.run("fund", "claim", account="dev1")  # the canonical version's author
    cli.refused("NothingToWithdraw", "fund", "claim", account="dev1")
    cli.refused("AlreadyClaimed", "fund", "claim", str(round_id), SLUG, account="dev1")


def test_one_proposal_changes_every_protocol_parameter(cli):
    """Each timelock-owned setter outside the registry and the governor, in one proposal of
    several `--call`s (the market's Params written as a parenthesised struct): the executor's
    fee terms, the storage registry's terms, treasury, reward and listed roots, the market's
    parameters, and the treasury funding the storage reward pool."""
    from aicommons.chain.deploy import MarketParams

    client = Client(cli.rpc_url)
    contracts = client.deployment.contracts
    new_treasury = load_account("dev9", None).address
    market = MarketParams(window=90, protocol_share_bps=700)
    root = "0x" + keccak256(b"a listed blob").hex()
    calls = [
        "OnchainExecutor:set_protocol_share:700",
        f"OnchainExecutor:set_treasury:{new_treasury}",
        "StorageRegistry:set_terms:2000,20,4000,3000,40,80",
        "StorageRegistry:set_reward:100,5",
        f"StorageRegistry:set_rewarded_root:{root},true",
        f"StorageRegistry:set_treasury:{new_treasury}",
        "ComputeMarket:set_params:(" + ",".join(str(v) for v in market.as_abi()) + ")",
        f"Treasury:fund_storage_rewards:{contracts['StorageRegistry']},1000",
    ]
    argv = ["gov", "propose", "--description", "retune the protocol"]
    for call in calls:
        argv += ["--call", call]
    match = re.search(r"proposal\s+(\d+)", cli.run(*argv))
    assert match
    proposal_id = match.group(1)
    cli.advance(DEVNET_PARAMS.voting_delay + 1)
    cli.run("gov", "vote", proposal_id, "for")
    cli.advance(DEVNET_PARAMS.voting_period + DEVNET_PARAMS.late_quorum_extension + 1)
    cli.run("gov", "queue", proposal_id)
    cli.advance(DEVNET_PARAMS.timelock_delay + 1)
    cli.run("gov", "execute", proposal_id)
    assert cli.show(proposal_id)["state"] == "executed"
    executor = client.contract("OnchainExecutor").functions
    assert (executor.protocol_share_bps().call(), executor.treasury().call()) == (
        700,
        new_treasury,
    )
    storage = client.contract("StorageRegistry").functions
    terms = (
        storage.stake_per_commitment().call(),
        storage.challenge_bond().call(),
        storage.slash_bps().call(),
        storage.challenger_share_bps().call(),
        storage.response_blocks().call(),
        storage.release_delay().call(),
    )
    assert terms == (2000, 20, 4000, 3000, 40, 80)
    assert (storage.epoch_blocks().call(), storage.epoch_reward().call()) == (100, 5)
    assert storage.rewarded_roots(bytes.fromhex(root[2:])).call()
    assert storage.treasury().call() == new_treasury
    assert storage.reward_pool().call() == 1000
    assert MarketParams.from_abi(client.contract("ComputeMarket").functions.params().call()) == (
        market
    )
