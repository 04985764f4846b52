"""The chain layer: Vyper contract sources, compilation and deployment, typed clients, devnet.

It talks to any EVM JSON-RPC network (or an in-process titanoboa environment) and never assumes
a particular chain. It may use `aicommons.commit` and `aicommons.runtime`, never storage or market.
"""
