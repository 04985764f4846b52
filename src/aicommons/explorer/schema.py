"""The contract events the explorer's pages read, with the arguments each page uses, by contract.

One list, checked against the compiled ABIs (`aicommons.chain.compile`) by
tests/explorer/test_explorer_schema.py: renaming an event or an argument in a contract fails that
test instead of silently emptying a page. The indexer itself stores every event of every
deployed contract; this is what the market, governance and storage pages rely on. Pure data.
"""

from __future__ import annotations

from aicommons.governance.proposals import SUPPORT

PAGE_EVENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "ModelRegistry": {
        "ModelRegistered": ("model_id", "slug", "owner"),
        "VersionPublished": (
            "model_id",
            "version_id",
            "weights_root",
            "fee",
            "modes",
            "licence",
            "locators",
            "attribution",
        ),
        "CanonicalSet": ("model_id", "version_id"),
        "VersionDeprecated": ("model_id", "version_id"),
    },
    "OnchainExecutor": {
        "ModelReady": ("model_id", "version_id"),
        "Inference": (
            "model_id",
            "version_id",
            "caller",
            "input_hash",
            "output",
            "output_hash",
            "label",
            "fee",
        ),
    },
    "StorageRegistry": {
        "Staked": ("provider", "amount"),
        "Unstaked": ("provider", "amount"),
        "Committed": ("provider", "root"),
        "Released": ("provider", "root"),
        "ChallengePassed": ("challenge_id", "provider"),
        "Slashed": ("challenge_id", "provider", "amount"),
    },
    "ComputeMarket": {
        "Staked": ("provider", "amount"),
        "UnstakeStarted": ("provider", "amount"),
        "StakeWithdrawn": ("provider", "amount"),
        "OfferSet": ("provider", "model_id", "version_id", "price", "active"),
        "RequestCreated": (
            "request_id",
            "version_id",
            "requester",
            "model_id",
            "mode",
            "redundancy",
            "max_fee",
            "deadline",
            "provider",
        ),
        "Claimed": ("request_id", "provider", "price"),
        "BatchPosted": ("batch_id", "provider", "root", "window_ends", "request_ids"),
        "ResultFinalised": ("request_id", "provider", "output_hash", "fee"),
        "RequestExpired": ("request_id", "refund", "slashed"),
        "Slashed": ("provider", "request_id", "amount", "winner", "to_winner"),
    },
    "DisputeGame": {
        "Challenged": (
            "dispute_id",
            "request_id",
            "challenger",
            "batch_id",
            "provider",
            "bond",
            "deadline",
        ),
        "RootsRevealed": ("dispute_id", "layer_roots", "deadline"),
        "LayerPicked": ("dispute_id", "layer", "rows", "deadline"),
        "ChildrenRevealed": ("dispute_id", "level", "index", "deadline"),
        "ChildPicked": ("dispute_id", "level", "index", "deadline"),
        "RowsRevealed": ("dispute_id", "index", "rows", "deadline"),
        "DisputeResolved": (
            "dispute_id",
            "request_id",
            "winner",
            "reason",
            "layer",
            "row",
            "element",
            "committed",
            "correct",
        ),
        "DisputeCancelled": ("dispute_id", "request_id"),
    },
    "RedundantMode": {
        "Committed": ("request_id", "provider"),
        "RevealsOpened": ("request_id", "reveal_ends"),
        "Revealed": ("request_id", "provider", "output_hash"),
    },
    "Governor": {
        "ProposalCreated": (
            "proposalId",
            "proposer",
            "targets",
            "values",
            "calldatas",
            "voteStart",
            "voteEnd",
            "description",
        ),
        "VoteCast": ("voter", "proposalId", "support", "weight", "reason"),
        "ProposalExtended": ("proposalId", "extendedDeadline"),
        "ProposalQueued": ("proposalId", "etaSeconds"),
        "ProposalExecuted": ("proposalId",),
        "ProposalCanceled": ("proposalId",),
    },
    "Timelock": {
        "CallScheduled": ("id", "index", "target", "amount", "payload", "delay"),
        "CallExecuted": ("id", "index", "target", "amount", "payload"),
        "Cancelled": ("id",),
    },
    "Treasury": {
        "Collected": ("source", "token", "amount"),
        "Granted": ("recipient", "token", "amount", "memo"),
        "RoundFunded": ("funding_round", "round_id", "pool"),
    },
    "FundingRound": {
        "RoundOpened": ("round_id", "funder", "pool", "start", "end", "cap_bps", "eligibility"),
        "Contributed": ("round_id", "model_id", "contributor", "amount", "eligible"),
        "RoundFinalised": ("round_id", "matched", "returned"),
        "Claimed": ("round_id", "model_id", "version_id", "amount"),
    },
}
"""contract → event → the arguments the pages read (each must exist in the compiled ABI)."""

DISPUTE_REASONS: dict[int, str] = {1: "one-step", 2: "timeout", 3: "unsupported layer"}
"""DisputeGame.vy `REASON_*` (DisputeResolved.reason), by code (pinned by a test)."""

SUPPORT_NAMES: dict[int, str] = {code: name for name, code in SUPPORT.items()}
"""VoteCast.support by code, as governor_counting.vy counts it."""


def page_event(contract: str, event: str) -> str:
    """`event`, after checking that the pages declared reading it from `contract` (a typo in a
    view fails at once instead of matching nothing)."""
    if event not in PAGE_EVENTS.get(contract, {}):
        raise KeyError(f"{contract}.{event} is not in explorer.schema.PAGE_EVENTS")
    return event
