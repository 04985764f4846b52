# pragma version ~=0.4.3
"""
@title Timelock: snekmate's TimelockController as a contract, the owner of every protocol parameter
@notice Every change the community decides (canonical versions, deprecations, fee shares, market
        and storage terms, treasury payments) is scheduled here by the Governor and runs only
        after `get_minimum_delay` seconds, so anyone who disagrees has time to leave.
@dev snekmate's module, instantiated, with one change: the three batch entry points
     (`hash_operation_batch`, `schedule_batch`, `execute_batch`) are this file's, with at most
     MAX_BATCH calls instead of snekmate's 255. Their selectors, operation ids (the same
     `keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))`), checks, revert
     reasons and events are snekmate's, built from its internal functions; only the memory a
     call reserves shrinks: snekmate's bound makes every batch touch memory for 255 payloads of
     1 024 bytes, whose quadratic expansion cost was most of a proposal's queue and execute gas
     (docs/governance.md, "Gas"). MAX_BATCH = the Governor's MAX_ACTIONS + 1 (its expiry guard).
     Roles after `aicommons.chain.deploy` (docs/contracts.md, "Roles"): PROPOSER and CANCELLER
     = the Governor only; EXECUTOR = open (granted to the zero address); DEFAULT_ADMIN = the
     timelock itself (the deployer's temporary admin role is renounced in the same deployment).
"""

from snekmate.auth import access_control
from snekmate.governance import timelock_controller

initializes: access_control
initializes: timelock_controller[access_control := access_control]

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    timelock_controller.PROPOSER_ROLE,
    timelock_controller.EXECUTOR_ROLE,
    timelock_controller.CANCELLER_ROLE,
    timelock_controller.IERC721_TOKENRECEIVER_SELECTOR,
    timelock_controller.IERC1155_TOKENRECEIVER_SINGLE_SELECTOR,
    timelock_controller.IERC1155_TOKENRECEIVER_BATCH_SELECTOR,
    timelock_controller.get_timestamp,
    timelock_controller.get_minimum_delay,
    timelock_controller.__default__,
    timelock_controller.supportsInterface,
    timelock_controller.is_operation,
    timelock_controller.is_operation_pending,
    timelock_controller.is_operation_ready,
    timelock_controller.is_operation_done,
    timelock_controller.get_operation_state,
    timelock_controller.hash_operation,
    timelock_controller.schedule,
    timelock_controller.cancel,
    timelock_controller.execute,
    timelock_controller.update_delay,
    timelock_controller.onERC721Received,
    timelock_controller.onERC1155Received,
    timelock_controller.onERC1155BatchReceived,
)

# The Governor's 16 actions plus its expiry guard (governor_timelock.vy MAX_BATCH).
MAX_BATCH: constant(uint256) = 17
MAX_PAYLOAD: constant(uint256) = 1_024


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


@external
@pure
def hash_operation_batch(
    targets: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_BATCH],
    predecessor: bytes32,
    salt: bytes32,
) -> bytes32:
    """
    @dev snekmate's `hash_operation_batch`: the id of a batch operation.
    @return keccak256(abi_encode(targets, amounts, payloads, predecessor, salt)).
    """
    return keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))


@external
def schedule_batch(
    targets: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_BATCH],
    predecessor: bytes32,
    salt: bytes32,
    delay: uint256,
):
    """
    @dev snekmate's `schedule_batch` (proposer only): one `CallScheduled` per call, `CallSalt`
         for a non-zero salt.
    """
    access_control._check_role(timelock_controller.PROPOSER_ROLE, msg.sender)
    assert (
        len(targets) == len(amounts) and len(targets) == len(payloads)
    ), "timelock_controller: length mismatch"
    id: bytes32 = keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))
    timelock_controller._schedule(id, delay)
    for index: uint256 in range(len(targets), bound=MAX_BATCH):
        log timelock_controller.CallScheduled(
            id=id,
            index=index,
            target=targets[index],
            amount=amounts[index],
            payload=payloads[index],
            predecessor=predecessor,
            delay=delay,
        )
    if salt != empty(bytes32):
        log timelock_controller.CallSalt(id=id, salt=salt)


@external
@payable
def execute_batch(
    targets: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_BATCH],
    predecessor: bytes32,
    salt: bytes32,
):
    """
    @dev snekmate's `execute_batch` (executor role, open here): checks readiness and the
         predecessor before, and readiness again after the calls (a reentrant change to the
         operation is caught), then marks it done; one `CallExecuted` per call.
    """
    timelock_controller._only_role_or_open_role(timelock_controller.EXECUTOR_ROLE)
    assert (
        len(targets) == len(amounts) and len(targets) == len(payloads)
    ), "timelock_controller: length mismatch"
    id: bytes32 = keccak256(abi_encode(targets, amounts, payloads, predecessor, salt))
    timelock_controller._before_call(id, predecessor)
    for index: uint256 in range(len(targets), bound=MAX_BATCH):
        timelock_controller._execute(targets[index], amounts[index], payloads[index])
        log timelock_controller.CallExecuted(
            id=id, index=index, target=targets[index], amount=amounts[index], payload=payloads[index]
        )
    timelock_controller._after_call(id)
