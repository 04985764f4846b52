# pragma version ~=0.4.3
"""
@title Timelock: snekmate's TimelockController as a contract, the owner of every protocol parameter
@notice Every change the community decides (canonical versions, deprecations, fee shares, market
        and storage terms, treasury payments) is scheduled here by the Governor and runs only
        after `get_minimum_delay` seconds, so anyone who disagrees has time to leave.
@dev Nothing is added to snekmate's module: this file only instantiates it. Roles after
     `aicommons.chain.deploy` (docs/contracts.md, "Roles"): PROPOSER and CANCELLER = the
     Governor only; EXECUTOR = open (granted to the zero address); DEFAULT_ADMIN = the timelock
     itself (the deployer's temporary admin role is renounced in the same deployment).
"""

from snekmate.auth import access_control
from snekmate.governance import timelock_controller

initializes: access_control
initializes: timelock_controller[access_control := access_control]

exports: timelock_controller.__interface__


@deploy
def __init__(
    minimum_delay_: uint256,
    proposers_: DynArray[address, 255],
    executors_: DynArray[address, 255],
    admin_: address,
):
    """
    @param minimum_delay_ Seconds between scheduling and execution.
    @param proposers_ Accounts granted the proposer and canceller roles.
    @param executors_ Accounts granted the executor role (the zero address: anyone).
    @param admin_ An optional admin for the initial role setup, which must renounce it.
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)
