"""Governance and economics: the deployment of the Governor, Timelock, Treasury and FundingRound
contracts, the exact quadratic-funding formula they implement, and the economics simulation.

Pure Python where it can be (`qf`, `economics`, `params`); contracts are reached only through
`aicommons.chain` (compile, deploy). Never imports the SDK or the CLI.
"""
