# pragma version ~=0.4.3
"""
@title RedundantMode: k providers commit, then reveal; the majority is final
@notice The redundant-mode referee of the ComputeMarket (docs/market.md "Redundant mode"). Once
        all k slots of a redundant request are claimed, each claimant commits to
        keccak256(abi_encode(request_id, provider, output_hash, trace_root, salt)); the k-th
        commitment opens the reveals for reveal_period; then anyone settles: a vote held by more
        than k / 2 claimants is final, claimants that revealed another vote lose their lock,
        silent ones the silence share. Without a majority the request is refunded. The market
        holds every token and pays according to the verdicts this contract reports.
@dev Invariants: a claimant commits once and reveals once, only what it committed; a request is
     settled once (the market refuses a second settlement). Reverts through `_require`.
"""

import ComputeMarket

MAX_REDUNDANCY: constant(uint256) = ComputeMarket.MAX_REDUNDANCY
MAX_OUTPUT_BYTES: constant(uint256) = ComputeMarket.MAX_OUTPUT_BYTES

CLAIMED: constant(uint256) = 2
MODE_REDUNDANT: constant(uint256) = 2
VERDICT_PAID: constant(uint256) = 1
VERDICT_WRONG: constant(uint256) = 2
VERDICT_SILENT: constant(uint256) = 3
VERDICT_RELEASED: constant(uint256) = 4


struct Vote:
    commitment: bytes32
    revealed: bool
    output_hash: bytes32
    trace_root: bytes32


event Committed:
    request_id: indexed(uint256)
    provider: indexed(address)
    commitment: bytes32


event RevealsOpened:
    request_id: indexed(uint256)
    reveal_ends: uint256


event Revealed:
    request_id: indexed(uint256)
    provider: indexed(address)
    output_hash: bytes32
    trace_root: bytes32
    output: Bytes[MAX_OUTPUT_BYTES]
    signature: Bytes[ComputeMarket.SIGNATURE_BYTES]


market: public(immutable(ComputeMarket.__interface__))
votes: public(HashMap[uint256, HashMap[address, Vote]])
commits: public(HashMap[uint256, uint256])
reveal_ends: public(HashMap[uint256, uint256])


@deploy
def __init__(market_: address):
    """
    @param market_ The ComputeMarket this contract settles through (it must name this contract).
    """
    self._require(market_ != empty(address), "ZeroAddress")
    market = ComputeMarket.__interface__(market_)


@external
def commit(request_id: uint256, commitment: bytes32):
    """
    @notice Claimant: commit to its result, after all k slots are claimed, before the deadline.
    """
    claims: DynArray[ComputeMarket.Claim, MAX_REDUNDANCY] = self._claimed(request_id)
    self._require(self._is_claimant(claims, msg.sender), "NotClaimant")
    deadline: uint256 = self._deadline(request_id)
    self._require(block.timestamp <= deadline, "DeadlinePassed")
    self._require(commitment != empty(bytes32), "InvalidCommitment")
    self._require(self.votes[request_id][msg.sender].commitment == empty(bytes32), "AlreadyCommitted")
    self.votes[request_id][msg.sender].commitment = commitment
    count: uint256 = self.commits[request_id] + 1
    self.commits[request_id] = count
    log Committed(request_id=request_id, provider=msg.sender, commitment=commitment)
    if count == len(claims):
        ends: uint256 = block.timestamp + (staticcall market.params()).reveal_period
        self.reveal_ends[request_id] = ends
        log RevealsOpened(request_id=request_id, reveal_ends=ends)


@external
def reveal(
    request_id: uint256,
    output: Bytes[MAX_OUTPUT_BYTES],
    trace_root: bytes32,
    salt: bytes32,
    signature: Bytes[ComputeMarket.SIGNATURE_BYTES],
):
    """
    @notice Claimant: open its commitment (after all k committed, before the reveal deadline).
    @param signature The claimant's EIP-712 Result over this output and trace root (65 bytes),
           logged so anyone can rebuild the receipt; not checked here (as in `post_batch`).
    """
    self._require(len(signature) == ComputeMarket.SIGNATURE_BYTES, "InvalidSignature")
    ends: uint256 = self.reveal_ends[request_id]
    self._require(ends != 0, "NotCommitted")
    self._require(block.timestamp <= ends, "RevealClosed")
    vote: Vote = self.votes[request_id][msg.sender]
    self._require(vote.commitment != empty(bytes32), "NotClaimant")
    self._require(not vote.revealed, "AlreadyRevealed")
    output_hash: bytes32 = keccak256(output)
    opened: bytes32 = keccak256(abi_encode(request_id, msg.sender, output_hash, trace_root, salt))
    self._require(opened == vote.commitment, "CommitmentMismatch")
    self.votes[request_id][msg.sender] = Vote(
        commitment=vote.commitment, revealed=True, output_hash=output_hash, trace_root=trace_root
    )
    log Revealed(
        request_id=request_id,
        provider=msg.sender,
        output_hash=output_hash,
        trace_root=trace_root,
        output=output,
        signature=signature,
    )


@external
def finalise(request_id: uint256, output: Bytes[MAX_OUTPUT_BYTES]):
    """
    @notice Anyone, after the reveal deadline or once all k revealed: settle by majority.
            `output` must be the majority's output (anything, e.g. empty, without a majority).
    """
    ends: uint256 = self.reveal_ends[request_id]
    self._require(ends != 0, "NotCommitted")
    claims: DynArray[ComputeMarket.Claim, MAX_REDUNDANCY] = self._claimed(request_id)
    k: uint256 = len(claims)
    votes: DynArray[Vote, MAX_REDUNDANCY] = []
    revealed: uint256 = 0
    for claim: ComputeMarket.Claim in claims:
        vote: Vote = self.votes[request_id][claim.provider]
        votes.append(vote)
        if vote.revealed:
            revealed += 1
    self._require(revealed == k or block.timestamp > ends, "RevealOpen")
    # The majority: a (output_hash, trace_root) vote held by more than k / 2 claimants.
    winner: int256 = -1
    for i: uint256 in range(k, bound=MAX_REDUNDANCY):
        if not votes[i].revealed:
            continue
        count: uint256 = 0
        for other: Vote in votes:
            if other.revealed and other.output_hash == votes[i].output_hash and other.trace_root == votes[i].trace_root:
                count += 1
        if count * 2 > k:
            winner = convert(i, int256)
            break
    verdicts: DynArray[uint256, MAX_REDUNDANCY] = []
    trace_root: bytes32 = empty(bytes32)
    if winner >= 0:
        majority: Vote = votes[convert(winner, uint256)]
        self._require(keccak256(output) == majority.output_hash, "OutputMismatch")
        trace_root = majority.trace_root
        for vote: Vote in votes:
            if not vote.revealed:
                verdicts.append(VERDICT_SILENT)
            elif vote.output_hash == majority.output_hash and vote.trace_root == majority.trace_root:
                verdicts.append(VERDICT_PAID)
            else:
                verdicts.append(VERDICT_WRONG)
    else:
        for vote: Vote in votes:
            if vote.revealed:
                verdicts.append(VERDICT_RELEASED)
            else:
                verdicts.append(VERDICT_SILENT)
    extcall market.settle_redundant(request_id, verdicts, output, trace_root)


@external
def expire(request_id: uint256):
    """
    @notice Anyone, past the deadline with fewer than k commitments: refund; claimants that did
            not commit are slashed as silent, the others released.
    """
    self._require(self.reveal_ends[request_id] == 0, "AlreadyCommitted")
    claims: DynArray[ComputeMarket.Claim, MAX_REDUNDANCY] = self._claimed(request_id)
    self._require(block.timestamp > self._deadline(request_id), "NotExpired")
    verdicts: DynArray[uint256, MAX_REDUNDANCY] = []
    for claim: ComputeMarket.Claim in claims:
        if self.votes[request_id][claim.provider].commitment == empty(bytes32):
            verdicts.append(VERDICT_SILENT)
        else:
            verdicts.append(VERDICT_RELEASED)
    extcall market.settle_redundant(request_id, verdicts, b"", empty(bytes32))


@internal
@view
def _claimed(request_id: uint256) -> DynArray[ComputeMarket.Claim, MAX_REDUNDANCY]:
    """
    @dev The claims of a redundant request whose k slots are all taken (and not yet settled).
    """
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    status: uint256 = 0
    mode: uint256 = 0
    deadline: uint256 = 0
    model_id, version_id, input_root, status, mode, deadline = staticcall market.request_terms(request_id)
    self._require(mode == MODE_REDUNDANT, "WrongMode")
    self._require(status == CLAIMED, "NotClaimed")
    return staticcall market.claims(request_id)


@internal
@view
def _deadline(request_id: uint256) -> uint256:
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    status: uint256 = 0
    mode: uint256 = 0
    deadline: uint256 = 0
    model_id, version_id, input_root, status, mode, deadline = staticcall market.request_terms(request_id)
    return deadline


@internal
@pure
def _is_claimant(claims: DynArray[ComputeMarket.Claim, MAX_REDUNDANCY], account: address) -> bool:
    for claim: ComputeMarket.Claim in claims:
        if claim.provider == account:
            return True
    return False


@internal
@pure
def _require(ok: bool, reason: String[32]):
    """
    @dev `assert ok, reason` with one shared Error(string) encoder.
    """
    if not ok:
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
