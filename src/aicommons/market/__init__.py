"""The compute market, protocol side: commitments for batches and disputes, dispute arguments,
and a typed client for the ComputeMarket contract (docs/market.md).

Pure where possible (commitments and dispute arguments never touch the network); only
`client` talks to a chain, through `aicommons.chain.transact.send_call`.
"""
