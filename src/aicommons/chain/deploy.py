"""Deploy the aicommons contract suite (token, registry, executor, compute market) to boa or any
web3 endpoint.

One function per environment, returning the addresses; never assumes a particular chain.
Governance (the registry and market owner) is the deploying account until it transfers the role.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

from aicommons.chain.compile import DeployError, deploy_web3, load_boa

DEFAULT_SUPPLY = 10**9 * 10**18
"""One billion AIC (18 decimals), all to the treasury."""
DEFAULT_PROTOCOL_SHARE_BPS = 500


AIC = 10**18


@dataclass(frozen=True)
class MarketParams:
    """ComputeMarket.Params, field for field (docs/market.md "Parameters"); devnet defaults:
    short windows so local use is quick (production uses hours, see the doc)."""

    window: int = 20
    move_period: int = 20
    reveal_period: int = 20
    finalise_grace: int = 60
    unbonding_delay: int = 60
    max_request_ttl: int = 86_400
    min_stake: int = 100 * AIC
    claim_lock: int = 10 * AIC
    challenge_bond: int = 10 * AIC
    winner_share_bps: int = 5_000
    silence_slash_bps: int = 5_000
    protocol_share_bps: int = DEFAULT_PROTOCOL_SHARE_BPS
    max_callback_gas: int = 500_000

    def as_abi(self) -> tuple[int, ...]:
        return astuple(self)

    @classmethod
    def from_abi(cls, values: Any) -> MarketParams:
        return cls(*(int(v) for v in values))


@dataclass(frozen=True)
class SuiteAddresses:
    """Where the suite lives on one chain (the market fields are empty for a suite without it)."""

    token: str
    registry: str
    executor: str
    market: str = ""
    dispute_game: str = ""
    redundant_mode: str = ""
    verifier: str = ""
    transformer_verifier: str = ""
    attention_verifier: str = ""

    def to_json(self) -> dict[str, str]:
        names = ("token", "registry", "executor", "market", "dispute_game", "redundant_mode")
        verifiers = ("verifier", "transformer_verifier", "attention_verifier")
        return {name: getattr(self, name) for name in (*names, *verifiers) if getattr(self, name)}


@dataclass(frozen=True)
class MarketContracts:
    """The compute market's contracts (boa handles or web3 contracts). The dispute game calls
    the head of the verifier chain, `attention_verifier` -> `transformer_verifier` -> `verifier`
    (OneStepVerifier, ops 1-7): each recomputes its own ops and forwards the others."""

    market: Any
    dispute_game: Any
    redundant_mode: Any
    verifier: Any
    transformer_verifier: Any = None
    attention_verifier: Any = None


def _check_share(protocol_share_bps: int) -> None:
    if not 0 <= protocol_share_bps <= 10_000:
        raise DeployError(f"protocol share {protocol_share_bps} bps is outside 0..10000")


def deploy_suite_boa(
    treasury: str,
    *,
    supply: int = DEFAULT_SUPPLY,
    protocol_share_bps: int = DEFAULT_PROTOCOL_SHARE_BPS,
    sender: str | None = None,
    holder: str | None = None,
) -> tuple[Any, Any, Any]:
    """Deploy into the current titanoboa environment; returns (token, registry, executor).
    The supply is minted to `holder` (default: the treasury)."""
    _check_share(protocol_share_bps)
    token = load_boa("CommonsToken", holder or treasury, supply, sender=sender)
    registry = load_boa("ModelRegistry", sender=sender)
    executor = load_boa(
        "OnchainExecutor",
        registry.address,
        token.address,
        treasury,
        protocol_share_bps,
        sender=sender,
    )
    return token, registry, executor


def deploy_suite_web3(
    w3: Any,
    account: Any,
    treasury: str,
    *,
    supply: int = DEFAULT_SUPPLY,
    protocol_share_bps: int = DEFAULT_PROTOCOL_SHARE_BPS,
    holder: str | None = None,
    market_params: MarketParams | None = None,
) -> SuiteAddresses:
    """Deploy over JSON-RPC from `account` (a LocalAccount, or an address the node unlocks):
    token, registry, executor and the compute market (`market_params`, devnet defaults).
    The supply is minted to `holder` (default: the treasury), e.g. the deployer, which then
    gives out the genesis allocation (`aicommons.governance.deploy`)."""
    market_params = market_params or MarketParams(protocol_share_bps=protocol_share_bps)
    _check_share(protocol_share_bps)
    token = deploy_web3(w3, "CommonsToken", holder or treasury, supply, account=account)
    registry = deploy_web3(w3, "ModelRegistry", account=account)
    executor = deploy_web3(
        w3,
        "OnchainExecutor",
        registry.address,
        token.address,
        treasury,
        protocol_share_bps,
        account=account,
    )
    contracts = deploy_market_web3(
        w3, account, token.address, registry.address, treasury, params=market_params
    )
    return SuiteAddresses(
        token.address,
        registry.address,
        executor.address,
        market=contracts.market.address,
        dispute_game=contracts.dispute_game.address,
        redundant_mode=contracts.redundant_mode.address,
        verifier=contracts.verifier.address,
        transformer_verifier=contracts.transformer_verifier.address,
        attention_verifier=contracts.attention_verifier.address,
    )


def deploy_market_boa(
    token: str,
    registry: str,
    treasury: str,
    *,
    params: MarketParams = MarketParams(),
    sender: str | None = None,
) -> MarketContracts:
    """Deploy ComputeMarket, DisputeGame, RedundantMode and the verifier chain into boa and
    link them (`set_modules` by `sender`, the owner)."""
    import boa

    verifier = load_boa("OneStepVerifier", sender=sender)
    transformer = load_boa("TransformerVerifier", verifier.address, sender=sender)
    attention = load_boa("AttentionVerifier", transformer.address, sender=sender)
    market = load_boa("ComputeMarket", registry, token, treasury, params.as_abi(), sender=sender)
    game = load_boa("DisputeGame", market.address, registry, attention.address, sender=sender)
    redundant = load_boa("RedundantMode", market.address, sender=sender)
    with boa.env.prank(sender or boa.env.eoa):
        market.set_modules(game.address, redundant.address)
    return MarketContracts(market, game, redundant, verifier, transformer, attention)


def deploy_market_web3(
    w3: Any,
    account: Any,
    token: str,
    registry: str,
    treasury: str,
    *,
    params: MarketParams = MarketParams(),
) -> MarketContracts:
    """Deploy and link the market's contracts over JSON-RPC from `account` (the owner)."""
    from aicommons.chain.transact import send_call

    verifier = deploy_web3(w3, "OneStepVerifier", account=account)
    transformer = deploy_web3(w3, "TransformerVerifier", verifier.address, account=account)
    attention = deploy_web3(w3, "AttentionVerifier", transformer.address, account=account)
    market = deploy_web3(
        w3, "ComputeMarket", registry, token, treasury, params.as_abi(), account=account
    )
    game = deploy_web3(
        w3, "DisputeGame", market.address, registry, attention.address, account=account
    )
    redundant = deploy_web3(w3, "RedundantMode", market.address, account=account)
    send_call(
        w3,
        account,
        market.functions.set_modules(game.address, redundant.address),
        "linking the market to its dispute game and redundant mode",
    )
    return MarketContracts(market, game, redundant, verifier, transformer, attention)
