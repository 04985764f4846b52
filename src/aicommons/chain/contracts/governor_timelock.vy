# pragma version ~=0.4.3
"""
@title governor_timelock: queue and execute a proposal's calls through snekmate's
       TimelockController (OpenZeppelin's GovernorTimelockControl)
@notice A succeeded proposal is scheduled in the timelock as one batch with a salt unique to
        the proposal, and runs after the timelock's delay. The timelock is the executor of
        every decision, so "governance" means the timelock: it alone may change the
        governor's parameters, and it owns every protocol parameter elsewhere.
@dev Use: `initializes: governor_timelock`, `governor_timelock.__init__(timelock, grace)`.
     The batch starts with a call back to the governor's `check_executable(proposalId)`, which
     refuses once the proposal's grace period after its eta has passed: the timelock's executor
     role is open (anyone may run a ready batch directly), so expiry is enforced inside the
     batch itself, whoever runs it.
     Invariants: _queued[id] != 0 iff the proposal was scheduled (its timelock operation id);
     eta = schedule time + the timelock's minimum delay at that time.
     Reverts: ZeroAddress, NotGovernance, InvalidGracePeriod, and the timelock's own reasons.
"""

MAX_ACTIONS: constant(uint256) = 16
MAX_CALLDATA: constant(uint256) = 1_024
# The proposal's actions plus the expiry guard call in front.
MAX_BATCH: constant(uint256) = MAX_ACTIONS + 1


interface ITimelockController:
    def schedule_batch(
        targets: DynArray[address, MAX_BATCH],
        amounts: DynArray[uint256, MAX_BATCH],
        payloads: DynArray[Bytes[MAX_CALLDATA], MAX_BATCH],
        predecessor: bytes32,
        salt: bytes32,
        delay: uint256,
    ): nonpayable
    def execute_batch(
        targets: DynArray[address, MAX_BATCH],
        amounts: DynArray[uint256, MAX_BATCH],
        payloads: DynArray[Bytes[MAX_CALLDATA], MAX_BATCH],
        predecessor: bytes32,
        salt: bytes32,
    ): payable
    def get_minimum_delay() -> uint256: view
    def is_operation_pending(id: bytes32) -> bool: view
    def is_operation_done(id: bytes32) -> bool: view


timelock: public(immutable(address))
# Seconds after its eta during which a queued proposal may run; afterwards it is Expired.
gracePeriod: public(uint256)

# proposal id -> timelock operation id
_queued: HashMap[uint256, bytes32]
# proposal id -> earliest execution timestamp
_etas: HashMap[uint256, uint256]


event TimelockGracePeriodSet:
    oldGracePeriod: uint256
    newGracePeriod: uint256


@deploy
def __init__(timelock_: address, grace_period_: uint256):
    """
    @param timelock_ The TimelockController that will run every decision.
    @param grace_period_ Seconds a queued proposal stays executable after its eta.
    """
    assert timelock_ != empty(address), "ZeroAddress"
    timelock = timelock_
    self._set_grace_period(grace_period_)


@external
@view
def proposalEta(proposalId: uint256) -> uint256:
    """
    @param proposalId The proposal.
    @return When it may run (zero until queued).
    """
    return self._etas[proposalId]


@external
@view
def proposalNeedsQueuing(proposalId: uint256) -> bool:
    """
    @return True: every proposal runs through the timelock.
    """
    return True


@internal
@view
def _check_governance():
    """
    @dev Governance is the timelock: a decision reaches the governor only by being executed.
    """
    assert msg.sender == timelock, "NotGovernance"


@internal
def _set_grace_period(new_grace_period: uint256):
    assert new_grace_period > 0, "InvalidGracePeriod"
    log TimelockGracePeriodSet(oldGracePeriod=self.gracePeriod, newGracePeriod=new_grace_period)
    self.gracePeriod = new_grace_period


@internal
@view
def _batch(
    proposal_id: uint256,
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
) -> (DynArray[address, MAX_BATCH], DynArray[uint256, MAX_BATCH], DynArray[Bytes[MAX_CALLDATA], MAX_BATCH]):
    """
    @dev The guard `check_executable(proposal_id)` on this governor, then the actions.
    """
    batch_targets: DynArray[address, MAX_BATCH] = [self]
    batch_values: DynArray[uint256, MAX_BATCH] = [0]
    batch_payloads: DynArray[Bytes[MAX_CALLDATA], MAX_BATCH] = [
        abi_encode(proposal_id, method_id=method_id("check_executable(uint256)"))
    ]
    for index: uint256 in range(len(targets), bound=MAX_ACTIONS):
        batch_targets.append(targets[index])
        batch_values.append(values[index])
        batch_payloads.append(calldatas[index])
    return batch_targets, batch_values, batch_payloads


@internal
@view
def _salt(proposal_id: uint256) -> bytes32:
    """
    @dev Unique per governor and proposal, so two proposals with the same calls never share a
         timelock operation.
    """
    return keccak256(abi_encode(self, proposal_id))


@internal
def _queue(
    proposal_id: uint256,
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
) -> uint256:
    batch_targets: DynArray[address, MAX_BATCH] = []
    batch_values: DynArray[uint256, MAX_BATCH] = []
    batch_payloads: DynArray[Bytes[MAX_CALLDATA], MAX_BATCH] = []
    batch_targets, batch_values, batch_payloads = self._batch(proposal_id, targets, values, calldatas)
    salt: bytes32 = self._salt(proposal_id)
    delay: uint256 = staticcall ITimelockController(timelock).get_minimum_delay()
    eta: uint256 = block.timestamp + delay
    self._queued[proposal_id] = keccak256(
        abi_encode(batch_targets, batch_values, batch_payloads, empty(bytes32), salt)
    )
    self._etas[proposal_id] = eta
    extcall ITimelockController(timelock).schedule_batch(
        batch_targets, batch_values, batch_payloads, empty(bytes32), salt, delay
    )
    return eta


@internal
def _execute(
    proposal_id: uint256,
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    amount: uint256,
):
    """
    @param amount Ether forwarded to the timelock (the caller's `msg.value`).
    """
    batch_targets: DynArray[address, MAX_BATCH] = []
    batch_values: DynArray[uint256, MAX_BATCH] = []
    batch_payloads: DynArray[Bytes[MAX_CALLDATA], MAX_BATCH] = []
    batch_targets, batch_values, batch_payloads = self._batch(proposal_id, targets, values, calldatas)
    extcall ITimelockController(timelock).execute_batch(
        batch_targets, batch_values, batch_payloads, empty(bytes32), self._salt(proposal_id), value=amount
    )


@internal
@view
def _eta(proposal_id: uint256) -> uint256:
    return self._etas[proposal_id]


@internal
@view
def _operation_pending(proposal_id: uint256) -> bool:
    return staticcall ITimelockController(timelock).is_operation_pending(self._queued[proposal_id])


@internal
@view
def _operation_done(proposal_id: uint256) -> bool:
    return staticcall ITimelockController(timelock).is_operation_done(self._queued[proposal_id])
