"""The compute market, protocol and off-chain sides: commitments for batches and disputes,
dispute arguments and moves, and the provider and watcher daemons (docs/market.md,
docs/market-offchain.md).

The protocol modules are pure (commitments and dispute arguments never touch the network); the
daemons talk to a chain only through the SDK's `client.market` service (`aicommons.sdk.market`).
"""
