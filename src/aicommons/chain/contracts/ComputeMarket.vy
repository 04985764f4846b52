# pragma version ~=0.4.3
"""
@title ComputeMarket: staked providers serve registered model versions; anyone can prove them wrong
@notice A requester escrows a fee for one inference of a registered version. In optimistic mode
        one staked provider claims it and posts the result inside a batch (one Merkle root per
        batch); after a challenge window with no open dispute anyone finalises it: the provider,
        the version's attribution list and the treasury are credited (pull payments) and
        `ResultFinalised` is the on-chain receipt. The two verification modules settle through
        this contract: DisputeGame (anyone disputes a posted result with a bond; the game ends in
        a one-step check) and RedundantMode (k providers commit, reveal, the majority is final).
        This contract holds every token (escrow, stakes, bonds, credits); the modules hold only
        their games. The protocol, with every deadline, bond and revert, is docs/market.md.
@dev Split in three contracts because one does not fit EIP-170's 24 576 bytes. Reverts go
     through `_require` (one shared Error(string) encoder instead of one per assert; same
     revert data as `assert cond, "Name"`).
     Invariants (property-tested):
     - token.balanceOf(self) == total_escrow + total_stake + total_bonds + payouts.total_owed;
     - a request's escrow is released exactly once (finalised, overturned or expired);
     - a provider's locked stake is the sum of the locks of its unsettled claims.
     Every state change logs an event with the ids indexed; external calls (token, verifier,
     callback) come after the effects; the callback is last, with bounded gas and no say.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable

import fee_split
import merkle
import payouts

initializes: ownable
initializes: payouts

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    payouts.token,
    payouts.owed,
    payouts.total_owed,
    payouts.withdraw,
)

BPS: constant(uint256) = 10_000
MAX_INPUT_BYTES: public(constant(uint256)) = 8192
MAX_INPUT_ROWS: public(constant(uint256)) = 1024
MAX_OUTPUT_BYTES: public(constant(uint256)) = 4096
MAX_BATCH: public(constant(uint256)) = 128
SIGNATURE_BYTES: public(constant(uint256)) = 65  # r ‖ s ‖ v of the provider's EIP-712 Result
# All outputs of one batch together (they travel in calldata and in the event).
MAX_BATCH_BYTES: public(constant(uint256)) = 32768
MAX_REDUNDANCY: public(constant(uint256)) = 9
MAX_DEPTH: constant(uint256) = 16
MAX_CALLBACK_GAS: constant(uint256) = 10_000_000
# Gas finalise keeps for itself after the callback returns (the log and the return).
CALLBACK_RESERVE: constant(uint256) = 10_000

MODE_OPTIMISTIC: constant(uint256) = 1
MODE_REDUNDANT: constant(uint256) = 2

# Dispute outcomes DisputeGame reports (close_dispute).
CHALLENGER_WON: constant(uint256) = 1
PROVIDER_WON: constant(uint256) = 2
CANCELLED: constant(uint256) = 3

# RedundantMode's verdict on each claim (settle_redundant).
VERDICT_PAID: constant(uint256) = 1  # in the majority: paid its price
VERDICT_WRONG: constant(uint256) = 2  # revealed another vote: loses its whole lock
VERDICT_SILENT: constant(uint256) = 3  # never committed or revealed: loses the silence share
VERDICT_RELEASED: constant(uint256) = 4  # no fault, no pay (no majority)

# Request status (docs/market.md "States"); DISPUTED (4) is derived, never stored.
OPEN: constant(uint256) = 1
CLAIMED: constant(uint256) = 2
POSTED: constant(uint256) = 3
DISPUTED: constant(uint256) = 4
FINALISED: constant(uint256) = 5
OVERTURNED: constant(uint256) = 6
EXPIRED: constant(uint256) = 7

interface GraphSource:
    # DisputeGame keeps each version's graph commitment (docs/market.md "Graph commitment").
    def input_layout(model_id: bytes32, version_id: bytes32) -> (bool, uint256, uint256): view
    def input_commitment(
        model_id: bytes32, version_id: bytes32, input: Bytes[MAX_INPUT_BYTES]
    ) -> (bytes32, bytes32): view


interface Registry:
    def inference_terms(model_id: bytes32, version_id: bytes32) -> (bool, bool, uint256): view
    def attribution(
        model_id: bytes32, version_id: bytes32
    ) -> DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION]: view
    def weights_root(model_id: bytes32, version_id: bytes32) -> bytes32: view
    def modes(model_id: bytes32, version_id: bytes32) -> uint256: view


struct Params:
    window: uint256  # challenge window after a batch is posted (s)
    move_period: uint256  # time for each dispute move (s)
    reveal_period: uint256  # redundant mode: time to reveal after the last commit (s)
    finalise_grace: uint256  # after deadline + window, before a claim counts as unanswered (s)
    unbonding_delay: uint256  # between unstake and withdraw_stake (s)
    max_request_ttl: uint256  # latest allowed deadline - now (s)
    min_stake: uint256
    claim_lock: uint256  # stake locked (slashable) per claim
    challenge_bond: uint256
    winner_share_bps: uint256  # of a slash or lost bond, to the winner; the rest to the treasury
    silence_slash_bps: uint256  # of the lock, from a provider that never answered
    protocol_share_bps: uint256  # of the version fee, to the treasury (fee_split)
    max_callback_gas: uint256


struct Provider:
    free: uint256
    locked: uint256
    unbonding: uint256
    unbond_at: uint256


struct InputRef:
    blob_id: bytes32  # storage blob holding the input; zero for a calldata input
    input_hash: bytes32
    input_root: bytes32


struct Request:
    # mode, redundancy, deadline and the status live in the request's hot word (_hot).
    requester: address
    model_id: bytes32
    version_id: bytes32
    input_hash: bytes32
    input_root: bytes32
    max_fee: uint256
    version_fee: uint256
    provider: address  # the only provider that may claim, or zero
    callback: address
    callback_gas: uint256
    prices: uint256  # sum of the claimed prices
    open_disputes: uint256


struct Claim:
    provider: address
    price: uint256
    lock: uint256


event ParamsSet:
    owner: indexed(address)
    params: Params


event Staked:
    provider: indexed(address)
    amount: uint256
    free: uint256


event UnstakeStarted:
    provider: indexed(address)
    amount: uint256
    release_at: uint256


event StakeWithdrawn:
    provider: indexed(address)
    amount: uint256


event OfferSet:
    provider: indexed(address)
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    price: uint256
    active: bool


event RequestCreated:
    request_id: indexed(uint256)
    version_id: indexed(bytes32)
    requester: indexed(address)
    model_id: bytes32
    mode: uint256
    redundancy: uint256
    max_fee: uint256
    version_fee: uint256
    deadline: uint256
    provider: address
    callback: address
    callback_gas: uint256
    input_hash: bytes32
    input_root: bytes32
    blob_id: bytes32
    input: Bytes[MAX_INPUT_BYTES]


event Claimed:
    request_id: indexed(uint256)
    provider: indexed(address)
    price: uint256
    lock: uint256


event BatchPosted:
    batch_id: indexed(uint256)
    provider: indexed(address)
    root: bytes32
    window_ends: uint256
    request_ids: DynArray[uint256, MAX_BATCH]
    trace_roots: DynArray[bytes32, MAX_BATCH]
    outputs: Bytes[MAX_BATCH_BYTES]
    output_sizes: DynArray[uint256, MAX_BATCH]
    signatures: Bytes[MAX_BATCH * SIGNATURE_BYTES]


event ModulesSet:
    dispute_game: indexed(address)
    redundant_mode: indexed(address)


event ResultFinalised:
    request_id: indexed(uint256)
    version_id: indexed(bytes32)
    provider: indexed(address)
    model_id: bytes32
    input_hash: bytes32
    output_hash: bytes32
    trace_root: bytes32
    fee: uint256
    output: Bytes[MAX_OUTPUT_BYTES]


event CallbackResult:
    request_id: indexed(uint256)
    callback: indexed(address)
    success: bool


event RequestExpired:
    request_id: indexed(uint256)
    refund: uint256
    slashed: uint256


event Slashed:
    provider: indexed(address)
    request_id: indexed(uint256)
    amount: uint256
    winner: address
    to_winner: uint256


registry: public(immutable(Registry))
treasury: public(immutable(address))
params: public(Params)
# The verification modules allowed to settle through this contract (set once by the owner).
dispute_game: public(address)
redundant_mode: public(address)

providers: public(HashMap[address, Provider])
# provider -> version key -> price + 1 (0: no offer)
_offers: HashMap[address, HashMap[bytes32, uint256]]

request_count: public(uint256)
requests: public(HashMap[uint256, Request])
# The one word post_batch reads per request:
# claimant | status << 160 | mode << 168 | redundancy << 176 | deadline << 184.
_hot: HashMap[uint256, uint256]
_claims: HashMap[uint256, DynArray[Claim, MAX_REDUNDANCY]]

batch_count: public(uint256)
batch_roots: public(HashMap[uint256, bytes32])
# provider | count << 160 | posted_at << 176 | window_ends << 216
_batch_meta: HashMap[uint256, uint256]

total_escrow: public(uint256)
total_stake: public(uint256)
total_bonds: public(uint256)


@deploy
def __init__(registry_: address, token_: address, treasury_: address, params_: Params):
    """
    @param registry_ The ModelRegistry the versions, fees and attribution come from.
    @param token_ CommonsToken: fees, stakes and bonds.
    @param treasury_ Receives the protocol share, slash remainders and fee dust.
    @param params_ The initial parameters (docs/market.md "Parameters").
    """
    self._require(registry_ != empty(address) and treasury_ != empty(address), "ZeroAddress")
    ownable.__init__()
    payouts.__init__(token_)
    registry = Registry(registry_)
    treasury = treasury_
    self._set_params(params_)


# ---------------------------------------------------------------------------------------------
# Governance: parameters and the verification modules.
# ---------------------------------------------------------------------------------------------


@external
def set_params(params_: Params):
    """
    @notice Replace every parameter (owner only); applies to actions taken afterwards.
    """
    ownable._check_owner()
    self._set_params(params_)


@external
def set_modules(dispute_game_: address, redundant_mode_: address):
    """
    @notice Name the DisputeGame and RedundantMode contracts (owner, once): a module that
            settles disputes must not change under running games.
    """
    ownable._check_owner()
    self._require(self.dispute_game == empty(address) and self.redundant_mode == empty(address), "ModulesSet")
    self._require(dispute_game_ != empty(address) and redundant_mode_ != empty(address), "ZeroAddress")
    self.dispute_game = dispute_game_
    self.redundant_mode = redundant_mode_
    log ModulesSet(dispute_game=dispute_game_, redundant_mode=redundant_mode_)


@internal
def _set_params(p: Params):
    self._require(p.window > 0 and p.window < 2**32, "InvalidParams")
    self._require(p.move_period > 0 and p.move_period < 2**32, "InvalidParams")
    self._require(p.reveal_period > 0 and p.reveal_period < 2**32, "InvalidParams")
    self._require(p.finalise_grace < 2**32 and p.unbonding_delay < 2**32, "InvalidParams")
    self._require(p.max_request_ttl > 0 and p.max_request_ttl < 2**32, "InvalidParams")
    self._require(p.claim_lock > 0 and p.claim_lock <= p.min_stake, "InvalidParams")
    self._require(p.challenge_bond > 0, "InvalidParams")
    self._require(p.winner_share_bps <= BPS and p.silence_slash_bps <= BPS, "InvalidParams")
    self._require(p.protocol_share_bps <= BPS, "InvalidParams")
    self._require(p.max_callback_gas <= MAX_CALLBACK_GAS, "InvalidParams")
    self._require(p.min_stake < 2**200 and p.challenge_bond < 2**200, "InvalidParams")
    self.params = p
    log ParamsSet(owner=msg.sender, params=p)


# ---------------------------------------------------------------------------------------------
# Providers: stake, offers.
# ---------------------------------------------------------------------------------------------


@external
def stake(amount: uint256):
    """
    @notice Add `amount` AIC to the caller's free stake (transferFrom the caller).
    """
    self._require(amount > 0, "InvalidAmount")
    self.providers[msg.sender].free += amount
    self.total_stake += amount
    log Staked(provider=msg.sender, amount=amount, free=self.providers[msg.sender].free)
    self._require(extcall payouts.token.transferFrom(msg.sender, self, amount, default_return_value=True), "TransferFailed")


@external
def unstake(amount: uint256):
    """
    @notice Start unbonding `amount` of free stake; withdrawable after the unbonding delay.
    """
    provider: Provider = self.providers[msg.sender]
    self._require(amount > 0 and amount <= provider.free, "InsufficientStake")
    provider.free -= amount
    provider.unbonding += amount
    provider.unbond_at = block.timestamp + self.params.unbonding_delay
    self.providers[msg.sender] = provider
    log UnstakeStarted(provider=msg.sender, amount=amount, release_at=provider.unbond_at)


@external
def withdraw_stake() -> uint256:
    """
    @notice Transfer the caller's unbonded stake to it once the delay has passed.
    """
    provider: Provider = self.providers[msg.sender]
    self._require(provider.unbonding > 0, "NothingUnbonding")
    self._require(block.timestamp >= provider.unbond_at, "StillUnbonding")
    amount: uint256 = provider.unbonding
    self.providers[msg.sender].unbonding = 0
    self.total_stake -= amount
    log StakeWithdrawn(provider=msg.sender, amount=amount)
    self._require(extcall payouts.token.transfer(msg.sender, amount, default_return_value=True), "TransferFailed")
    return amount


@external
def offer(model_id: bytes32, version_id: bytes32, price: uint256):
    """
    @notice Offer to serve a version at `price` AIC per request (on top of the version fee).
    """
    self._require(self._stake_of(msg.sender) >= self.params.min_stake, "InsufficientStake")
    self._live_terms(model_id, version_id)
    key: bytes32 = self._version_key(model_id, version_id)
    registered: bool = False
    rows: uint256 = 0
    size: uint256 = 0
    registered, rows, size = staticcall GraphSource(self.dispute_game).input_layout(model_id, version_id)
    self._require(registered, "GraphNotRegistered")
    self._require(price < 2**200, "InvalidAmount")
    self._offers[msg.sender][key] = price + 1
    log OfferSet(provider=msg.sender, model_id=model_id, version_id=version_id, price=price, active=True)


@external
def retract(model_id: bytes32, version_id: bytes32):
    """
    @notice Stop offering a version (claims already made stand).
    """
    key: bytes32 = self._version_key(model_id, version_id)
    self._require(self._offers[msg.sender][key] != 0, "NotOffered")
    self._offers[msg.sender][key] = 0
    log OfferSet(provider=msg.sender, model_id=model_id, version_id=version_id, price=0, active=False)


@external
@view
def offer_price(provider: address, model_id: bytes32, version_id: bytes32) -> (bool, uint256):
    """
    @return (offered, price) of `provider` for the version.
    """
    stored: uint256 = self._offers[provider][self._version_key(model_id, version_id)]
    if stored == 0:
        return False, 0
    return True, stored - 1


# ---------------------------------------------------------------------------------------------
# Requests and claims.
# ---------------------------------------------------------------------------------------------


@external
def request(
    model_id: bytes32,
    version_id: bytes32,
    input: Bytes[MAX_INPUT_BYTES],
    input_ref: InputRef,
    mode: uint256,
    redundancy: uint256,
    max_fee: uint256,
    deadline: uint256,
    provider: address,
    callback: address,
    callback_gas: uint256,
) -> uint256:
    """
    @notice Ask for one inference; escrows `max_fee` (transferFrom the caller).
    @param input The int8 input's rows (one byte per value), or empty for a blob input.
    @param input_ref (blob_id, input_hash, input_root) of a blob input; zeros otherwise.
    @param mode 1 optimistic, 2 redundant.
    @param redundancy k providers for redundant mode, 1 for optimistic.
    @param max_fee Most the caller pays: version fee plus the provider price(s).
    @param deadline Last second to claim and answer.
    @param provider The only provider that may claim (optimistic), or zero for anyone.
    @param callback Contract called with the output at finalisation, or zero.
    @param callback_gas Gas the callback gets (at most max_callback_gas).
    @return request_id
    """
    version_fee: uint256 = self._live_terms(model_id, version_id)
    self._require(mode == MODE_OPTIMISTIC or mode == MODE_REDUNDANT, "InvalidMode")
    if mode == MODE_OPTIMISTIC:
        self._require(redundancy == 1, "InvalidRedundancy")
    else:
        self._require(redundancy >= 2 and redundancy <= MAX_REDUNDANCY, "InvalidRedundancy")
        self._require(provider == empty(address), "InvalidProvider")
    # The registry's mode bits: 4 optimistic, 2 redundant (the version must offer the mode).
    bit: uint256 = 4 if mode == MODE_OPTIMISTIC else 2
    self._require(staticcall registry.modes(model_id, version_id) & bit != 0, "ModeNotOffered")
    self._require(deadline > block.timestamp, "DeadlinePassed")
    self._require(deadline <= block.timestamp + self.params.max_request_ttl, "DeadlineTooFar")
    self._require(callback_gas <= self.params.max_callback_gas, "CallbackGasTooHigh")
    self._require(max_fee >= version_fee, "FeeTooLow")
    input_hash: bytes32 = input_ref.input_hash
    input_root: bytes32 = input_ref.input_root
    if len(input) > 0:
        # The game checks the size against the version's graph and hashes the tensor root.
        self._require(input_ref.blob_id == empty(bytes32), "InvalidInput")
        input_hash, input_root = staticcall GraphSource(self.dispute_game).input_commitment(
            model_id, version_id, input
        )
    else:
        registered: bool = False
        rows: uint256 = 0
        size: uint256 = 0
        registered, rows, size = staticcall GraphSource(self.dispute_game).input_layout(model_id, version_id)
        self._require(registered, "GraphNotRegistered")
        self._require(input_ref.blob_id != empty(bytes32), "InvalidInput")
        self._require(input_hash != empty(bytes32) and input_root != empty(bytes32), "InvalidInput")
    self._require(staticcall payouts.token.allowance(msg.sender, self) >= max_fee, "FeeUnpaid")
    self._require(staticcall payouts.token.balanceOf(msg.sender) >= max_fee, "FeeUnpaid")

    request_id: uint256 = self.request_count + 1
    self.request_count = request_id
    self.requests[request_id] = Request(
        requester=msg.sender,
        model_id=model_id,
        version_id=version_id,
        input_hash=input_hash,
        input_root=input_root,
        max_fee=max_fee,
        version_fee=version_fee,
        provider=provider,
        callback=callback,
        callback_gas=callback_gas,
        prices=0,
        open_disputes=0,
    )
    self._hot[request_id] = OPEN << 160 | mode << 168 | redundancy << 176 | deadline << 184
    self.total_escrow += max_fee
    log RequestCreated(
        request_id=request_id,
        version_id=version_id,
        requester=msg.sender,
        model_id=model_id,
        mode=mode,
        redundancy=redundancy,
        max_fee=max_fee,
        version_fee=version_fee,
        deadline=deadline,
        provider=provider,
        callback=callback,
        callback_gas=callback_gas,
        input_hash=input_hash,
        input_root=input_root,
        blob_id=input_ref.blob_id,
        input=input,
    )
    self._require(extcall payouts.token.transferFrom(msg.sender, self, max_fee, default_return_value=True), "TransferFailed")
    return request_id


@external
def claim(request_id: uint256):
    """
    @notice Take the request (one of its k slots in redundant mode); locks claim_lock of stake.
    """
    status: uint256 = self._status(request_id)
    self._require(status == OPEN, "RequestNotOpen")
    req: Request = self.requests[request_id]
    self._require(block.timestamp <= self._deadline(request_id), "DeadlinePassed")
    self._require(req.provider == empty(address) or req.provider == msg.sender, "WrongProvider")
    offered: uint256 = self._offers[msg.sender][self._version_key(req.model_id, req.version_id)]
    self._require(offered != 0, "NotOffered")
    price: uint256 = offered - 1
    self._require(req.version_fee + req.prices + price <= req.max_fee, "PriceAboveMaxFee")
    claims: DynArray[Claim, MAX_REDUNDANCY] = self._claims[request_id]
    for existing: Claim in claims:
        self._require(existing.provider != msg.sender, "AlreadyClaimed")
    lock: uint256 = self.params.claim_lock
    provider: Provider = self.providers[msg.sender]
    self._require(provider.free + provider.locked >= self.params.min_stake, "InsufficientStake")
    self._require(provider.free >= lock, "InsufficientStake")
    self.providers[msg.sender].free = provider.free - lock
    self.providers[msg.sender].locked = provider.locked + lock
    self._claims[request_id].append(
        Claim(provider=msg.sender, price=price, lock=lock)
    )
    self.requests[request_id].prices = req.prices + price
    if len(claims) + 1 == (self._hot[request_id] >> 176) & 255:
        self._set_status(request_id, msg.sender, CLAIMED)
    log Claimed(request_id=request_id, provider=msg.sender, price=price, lock=lock)


# ---------------------------------------------------------------------------------------------
# Optimistic mode: batches and finalisation.
# ---------------------------------------------------------------------------------------------


@external
def post_batch(
    request_ids: DynArray[uint256, MAX_BATCH],
    trace_roots: DynArray[bytes32, MAX_BATCH],
    outputs: Bytes[MAX_BATCH_BYTES],
    output_sizes: DynArray[uint256, MAX_BATCH],
    signatures: Bytes[MAX_BATCH * SIGNATURE_BYTES],
) -> uint256:
    """
    @notice Post the results of claimed optimistic requests under one Merkle root: result i is
            (request_ids[i], trace_roots[i], the next output_sizes[i] bytes of `outputs`),
            signed by the provider with signature i (65 bytes each, in order).
    @dev One storage read per request (its hot word) and no per-request write: the batch root
         and one packed word are stored; the event repeats the posted data for watchers and
         carries the signatures, so anyone can rebuild and check a receipt from chain data.
         The signatures are not checked here (an ecrecover per result would cost ~4k gas):
         only the claimant can post, so a bad signature can only fail its own receipts.
    @return batch_id
    """
    count: uint256 = len(request_ids)
    self._require(count > 0, "EmptyBatch")
    self._require(len(trace_roots) == count and len(output_sizes) == count, "BatchMismatch")
    self._require(len(signatures) == count * SIGNATURE_BYTES, "BatchMismatch")
    digests: DynArray[bytes32, MAX_BATCH] = []
    offset: uint256 = 0
    for i: uint256 in range(count, bound=MAX_BATCH):
        request_id: uint256 = request_ids[i]
        hot: uint256 = self._hot[request_id]
        self._require(hot & (2**160 - 1) == convert(msg.sender, uint256), "NotClaimant")
        status: uint256 = (hot >> 160) & 255
        self._require(status == CLAIMED or status == POSTED, "NotClaimant")
        self._require((hot >> 168) & 255 == MODE_OPTIMISTIC, "WrongMode")
        self._require(block.timestamp <= hot >> 184, "DeadlinePassed")
        size: uint256 = output_sizes[i]
        self._require(size <= MAX_OUTPUT_BYTES and offset + size <= len(outputs), "BatchMismatch")
        output_hash: bytes32 = keccak256(slice(outputs, offset, size))
        offset += size
        digests.append(keccak256(concat(b"\x00", abi_encode(request_id, output_hash, trace_roots[i]))))
    self._require(offset == len(outputs), "BatchMismatch")
    root: bytes32 = merkle.root_from_inner(count, merkle.subtree_root(digests, merkle.tree_depth(count)))
    batch_id: uint256 = self.batch_count + 1
    self.batch_count = batch_id
    window_ends: uint256 = block.timestamp + self.params.window
    self.batch_roots[batch_id] = root
    self._batch_meta[batch_id] = (
        convert(msg.sender, uint256) | count << 160 | block.timestamp << 176 | window_ends << 216
    )
    log BatchPosted(
        batch_id=batch_id,
        provider=msg.sender,
        root=root,
        window_ends=window_ends,
        request_ids=request_ids,
        trace_roots=trace_roots,
        outputs=outputs,
        output_sizes=output_sizes,
        signatures=signatures,
    )
    return batch_id


@external
@view
def batch(batch_id: uint256) -> (bytes32, address, uint256, uint256, uint256):
    """
    @return (root, provider, count, posted_at, window_ends) of a batch.
    """
    meta: uint256 = self._batch_meta[batch_id]
    return (
        self.batch_roots[batch_id],
        convert(convert(meta & (2**160 - 1), uint160), address),
        (meta >> 160) & 65535,
        (meta >> 176) & (2**40 - 1),
        meta >> 216,
    )


@external
@nonreentrant
def finalise(
    request_id: uint256,
    batch_id: uint256,
    index: uint256,
    output: Bytes[MAX_OUTPUT_BYTES],
    trace_root: bytes32,
    siblings: DynArray[bytes32, merkle.MAX_DEPTH],
):
    """
    @notice Settle a posted optimistic result after its window: pay, log the receipt, call back.
    @param index The result's position in the batch; `siblings` its Merkle proof.
    """
    status: uint256 = self._status(request_id)
    self._require(status == CLAIMED or status == POSTED, "AlreadySettled")
    req: Request = self.requests[request_id]
    self._require(self._mode(request_id) == MODE_OPTIMISTIC, "WrongMode")
    claim: Claim = self._claims[request_id][0]
    output_hash: bytes32 = keccak256(output)
    window_ends: uint256 = self._check_leaf(
        request_id, claim.provider, self._deadline(request_id), batch_id, index, output_hash, trace_root, siblings
    )
    self._require(block.timestamp >= window_ends, "WindowOpen")
    self._require(req.open_disputes == 0, "DisputeOpen")
    self._set_status(request_id, claim.provider, FINALISED)
    self._release(claim.provider, claim.lock)
    paid: uint256 = self._pay(request_id, req, claim.provider, claim.price, req.version_fee + claim.price)
    log ResultFinalised(
        request_id=request_id,
        version_id=req.version_id,
        provider=claim.provider,
        model_id=req.model_id,
        input_hash=req.input_hash,
        output_hash=output_hash,
        trace_root=trace_root,
        fee=paid,
        output=output,
    )
    self._callback(request_id, req, output)


@external
@nonreentrant
def expire(request_id: uint256):
    """
    @notice Refund a request nobody answered in time. Open (not fully claimed) past its
            deadline: claimants are released. Optimistic and claimed past deadline + window +
            finalise_grace, with no dispute open: the claimant stayed silent and is slashed.
            A claimed redundant request expires through RedundantMode, which knows the commits.
    """
    status: uint256 = self._status(request_id)
    req: Request = self.requests[request_id]
    self._require(status == OPEN or status == CLAIMED, "AlreadySettled")
    self._require(req.open_disputes == 0, "DisputeOpen")
    slashed: uint256 = 0
    claims: DynArray[Claim, MAX_REDUNDANCY] = self._claims[request_id]
    if status == OPEN:
        self._require(block.timestamp > self._deadline(request_id), "NotExpired")
        for claim: Claim in claims:
            self._release(claim.provider, claim.lock)
    else:
        self._require(self._mode(request_id) == MODE_OPTIMISTIC, "WrongMode")
        grace: uint256 = self.params.window + self.params.finalise_grace
        self._require(block.timestamp > self._deadline(request_id) + grace, "NotExpired")
        slashed = self._slash_silent(request_id, req, claims[0])
    self._set_status(request_id, empty(address), EXPIRED)
    self._refund(request_id, req.requester, req.max_fee)
    log RequestExpired(request_id=request_id, refund=req.max_fee, slashed=slashed)


@external
@view
def request_status(request_id: uint256) -> uint256:
    """
    @return 1 open, 2 claimed, 3 posted, 4 disputed, 5 finalised, 6 overturned, 7 expired
            (0: no such request).
    """
    status: uint256 = self._status(request_id)
    if (status == CLAIMED or status == POSTED) and self.requests[request_id].open_disputes > 0:
        return DISPUTED
    return status


@external
@view
def request_terms(request_id: uint256) -> (bytes32, bytes32, bytes32, uint256, uint256, uint256):
    """
    @notice What the verification modules read: (model_id, version_id, input_root, status,
            mode, deadline); status as stored (no derived DISPUTED).
    """
    hot: uint256 = self._hot[request_id]
    return (
        self.requests[request_id].model_id,
        self.requests[request_id].version_id,
        self.requests[request_id].input_root,
        (hot >> 160) & 255,
        (hot >> 168) & 255,
        hot >> 184,
    )


@external
@view
def claims(request_id: uint256) -> DynArray[Claim, MAX_REDUNDANCY]:
    """
    @return Every claim of the request, in claim order.
    """
    return self._claims[request_id]


# ---------------------------------------------------------------------------------------------
# Settlement hooks for the verification modules (DisputeGame, RedundantMode).
# ---------------------------------------------------------------------------------------------


@external
def open_dispute(
    request_id: uint256,
    batch_id: uint256,
    index: uint256,
    output_hash: bytes32,
    trace_root: bytes32,
    siblings: DynArray[bytes32, merkle.MAX_DEPTH],
    challenger: address,
) -> (address, uint256):
    """
    @notice DisputeGame only: a challenge of a posted result. Checks the leaf is the claimant's
            and its window is open, takes the bond from the challenger (which approved this
            contract) and holds the request until the dispute closes.
    @return (provider, bond)
    """
    self._require(msg.sender == self.dispute_game, "NotDisputeGame")
    status: uint256 = self._status(request_id)
    self._require(status == CLAIMED or status == POSTED, "AlreadySettled")
    req: Request = self.requests[request_id]
    self._require(self._mode(request_id) == MODE_OPTIMISTIC, "WrongMode")
    provider: address = self._claims[request_id][0].provider
    self._require(challenger != provider, "SelfChallenge")
    window_ends: uint256 = self._check_leaf(
        request_id, provider, self._deadline(request_id), batch_id, index, output_hash, trace_root, siblings
    )
    self._require(block.timestamp < window_ends, "WindowClosed")
    bond: uint256 = self.params.challenge_bond
    self.requests[request_id].open_disputes = req.open_disputes + 1
    self._set_status(request_id, provider, POSTED)
    self.total_bonds += bond
    self._require(
        extcall payouts.token.transferFrom(challenger, self, bond, default_return_value=True), "TransferFailed"
    )
    return provider, bond


@external
def close_dispute(request_id: uint256, challenger: address, bond: uint256, outcome: uint256):
    """
    @notice DisputeGame only: a dispute ended. CHALLENGER_WON overturns the request (escrow back
            to the requester, the provider's lock slashed: winner share to the challenger, the
            rest to the treasury) and returns the bond; PROVIDER_WON splits the bond between
            the provider (winner share) and the treasury; CANCELLED returns the bond.
    """
    self._require(msg.sender == self.dispute_game, "NotDisputeGame")
    req: Request = self.requests[request_id]
    self.requests[request_id].open_disputes = req.open_disputes - 1
    self.total_bonds -= bond
    reference: bytes32 = convert(request_id, bytes32)
    claim: Claim = self._claims[request_id][0]
    if outcome == CHALLENGER_WON:
        if self._status(request_id) != OVERTURNED:
            self._set_status(request_id, claim.provider, OVERTURNED)
            self._take_lock(claim.provider, claim.lock, claim.lock)
            share: uint256 = claim.lock * self.params.winner_share_bps // BPS
            payouts._credit(challenger, share, reference)
            if claim.lock > share:
                payouts._credit(treasury, claim.lock - share, reference)
            self._refund(request_id, req.requester, req.max_fee)
            log Slashed(provider=claim.provider, request_id=request_id, amount=claim.lock, winner=challenger, to_winner=share)
        payouts._credit(challenger, bond, reference)
    elif outcome == PROVIDER_WON:
        share: uint256 = bond * self.params.winner_share_bps // BPS
        if share > 0:
            payouts._credit(claim.provider, share, reference)
        if bond > share:
            payouts._credit(treasury, bond - share, reference)
    else:
        payouts._credit(challenger, bond, reference)


@external
@nonreentrant
def settle_redundant(
    request_id: uint256,
    verdicts: DynArray[uint256, MAX_REDUNDANCY],
    output: Bytes[MAX_OUTPUT_BYTES],
    trace_root: bytes32,
):
    """
    @notice RedundantMode only: settle a claimed redundant request with one verdict per claim.
            With at least one VERDICT_PAID claim the majority `output` is final: the majority is
            paid, ResultFinalised is logged and the callback called. Without one the request
            expires and is refunded. WRONG claims lose their whole lock, SILENT ones the silence
            share; the winner share of those slashes goes to the majority (equal parts, dust to
            the treasury), or to the requester when there is none.
    """
    self._require(msg.sender == self.redundant_mode, "NotRedundantMode")
    self._require(self._status(request_id) == CLAIMED, "AlreadySettled")
    req: Request = self.requests[request_id]
    self._require(self._mode(request_id) == MODE_REDUNDANT, "WrongMode")
    claims: DynArray[Claim, MAX_REDUNDANCY] = self._claims[request_id]
    self._require(len(verdicts) == len(claims), "InvalidVerdicts")
    reference: bytes32 = convert(request_id, bytes32)
    winners: uint256 = 0
    prices: uint256 = 0
    paid_provider: address = empty(address)
    for i: uint256 in range(len(claims), bound=MAX_REDUNDANCY):
        if verdicts[i] == VERDICT_PAID:
            winners += 1
            prices += claims[i].price
            paid_provider = claims[i].provider
    pool: uint256 = 0
    slashed: uint256 = 0
    for i: uint256 in range(len(claims), bound=MAX_REDUNDANCY):
        claim: Claim = claims[i]
        verdict: uint256 = verdicts[i]
        if verdict == VERDICT_PAID or verdict == VERDICT_RELEASED:
            self._release(claim.provider, claim.lock)
            continue
        self._require(verdict == VERDICT_WRONG or verdict == VERDICT_SILENT, "InvalidVerdicts")
        amount: uint256 = claim.lock
        if verdict == VERDICT_SILENT:
            amount = claim.lock * self.params.silence_slash_bps // BPS
        self._take_lock(claim.provider, claim.lock, amount)
        share: uint256 = amount * self.params.winner_share_bps // BPS
        pool += share
        slashed += amount
        if amount > share:
            payouts._credit(treasury, amount - share, reference)
        winner: address = req.requester
        if winners > 0:
            winner = empty(address)  # shared by the majority, below
        log Slashed(provider=claim.provider, request_id=request_id, amount=amount, winner=winner, to_winner=share)
    if winners == 0:
        if pool > 0:
            payouts._credit(req.requester, pool, reference)
        self._set_status(request_id, empty(address), EXPIRED)
        self._refund(request_id, req.requester, req.max_fee)
        log RequestExpired(request_id=request_id, refund=req.max_fee, slashed=slashed)
        return
    each: uint256 = pool // winners
    for i: uint256 in range(len(claims), bound=MAX_REDUNDANCY):
        if verdicts[i] == VERDICT_PAID:
            payouts._credit(claims[i].provider, claims[i].price + each, reference)
    if pool > each * winners:
        payouts._credit(treasury, pool - each * winners, reference)
    self._set_status(request_id, paid_provider, FINALISED)
    paid: uint256 = self._pay(request_id, req, empty(address), 0, req.version_fee + prices)
    log ResultFinalised(
        request_id=request_id,
        version_id=req.version_id,
        provider=paid_provider,
        model_id=req.model_id,
        input_hash=req.input_hash,
        output_hash=keccak256(output),
        trace_root=trace_root,
        fee=paid,
        output=output,
    )
    self._callback(request_id, req, output)


# ---------------------------------------------------------------------------------------------
# Internals.
# ---------------------------------------------------------------------------------------------


@internal
@pure
def _version_key(model_id: bytes32, version_id: bytes32) -> bytes32:
    return keccak256(concat(model_id, version_id))


@internal
@view
def _live_terms(model_id: bytes32, version_id: bytes32) -> uint256:
    exists: bool = False
    deprecated: bool = False
    fee: uint256 = 0
    exists, deprecated, fee = staticcall registry.inference_terms(model_id, version_id)
    self._require(exists, "UnknownVersion")
    self._require(not deprecated, "VersionDeprecated")
    return fee


@internal
@view
def _stake_of(account: address) -> uint256:
    provider: Provider = self.providers[account]
    return provider.free + provider.locked


@internal
@view
def _status(request_id: uint256) -> uint256:
    return (self._hot[request_id] >> 160) & 255


@internal
def _set_status(request_id: uint256, claimant: address, status: uint256):
    """
    @dev Rewrite claimant and status; mode, redundancy and deadline (bits 168+) stay.
    """
    kept: uint256 = self._hot[request_id] >> 168 << 168
    self._hot[request_id] = kept | convert(claimant, uint256) | status << 160


@internal
@view
def _mode(request_id: uint256) -> uint256:
    return (self._hot[request_id] >> 168) & 255


@internal
@view
def _deadline(request_id: uint256) -> uint256:
    return self._hot[request_id] >> 184


@internal
@view
def _check_leaf(
    request_id: uint256,
    provider: address,
    deadline: uint256,
    batch_id: uint256,
    index: uint256,
    output_hash: bytes32,
    trace_root: bytes32,
    siblings: DynArray[bytes32, merkle.MAX_DEPTH],
) -> uint256:
    """
    @dev The result leaf is in the batch, the batch is the claimant's and was posted by the
         deadline. Returns the batch's window end.
    """
    meta: uint256 = self._batch_meta[batch_id]
    self._require(meta != 0, "UnknownBatch")
    self._require(meta & (2**160 - 1) == convert(provider, uint256), "NotClaimant")
    self._require((meta >> 176) & (2**40 - 1) <= deadline, "DeadlinePassed")
    leaf: bytes32 = keccak256(concat(b"\x00", abi_encode(request_id, output_hash, trace_root)))
    count: uint256 = (meta >> 160) & 65535
    self._require(merkle.verify_proof(self.batch_roots[batch_id], leaf, index, count, siblings), "InvalidProof")
    return meta >> 216


@internal
def _release(provider: address, lock: uint256):
    self.providers[provider].locked -= lock
    self.providers[provider].free += lock


@internal
def _take_lock(provider: address, lock: uint256, amount: uint256):
    """
    @dev Remove `amount` of the lock `lock` from the provider's stake; the rest is released.
    """
    self.providers[provider].locked -= lock
    self.providers[provider].free += lock - amount
    self.total_stake -= amount


@internal
def _slash_silent(request_id: uint256, req: Request, claim: Claim) -> uint256:
    """
    @dev A claimant that never answered: silence_slash_bps of its lock, the winner share to the
         requester (who waited for nothing), the rest to the treasury.
    """
    amount: uint256 = claim.lock * self.params.silence_slash_bps // BPS
    self._take_lock(claim.provider, claim.lock, amount)
    share: uint256 = amount * self.params.winner_share_bps // BPS
    if share > 0:
        payouts._credit(req.requester, share, convert(request_id, bytes32))
    if amount > share:
        payouts._credit(treasury, amount - share, convert(request_id, bytes32))
    log Slashed(provider=claim.provider, request_id=request_id, amount=amount, winner=req.requester, to_winner=share)
    return amount


@internal
def _refund(request_id: uint256, requester: address, amount: uint256):
    self.total_escrow -= amount
    if amount > 0:
        payouts._credit(requester, amount, convert(request_id, bytes32))


@internal
def _pay(request_id: uint256, req: Request, provider: address, price: uint256, fee: uint256) -> uint256:
    """
    @dev Release the escrow: `price` to `provider` (when given), the version fee through the
         shared fee split, the unused rest back to the requester. Returns the fee charged.
    """
    self.total_escrow -= req.max_fee
    reference: bytes32 = convert(request_id, bytes32)
    if provider != empty(address) and price > 0:
        payouts._credit(provider, price, reference)
    if req.version_fee > 0:
        attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION] = staticcall registry.attribution(
            req.model_id, req.version_id
        )
        credits: DynArray[fee_split.Credit, fee_split.MAX_CREDITS] = fee_split.split(
            req.version_fee, self.params.protocol_share_bps, attribution, treasury
        )
        for credit: fee_split.Credit in credits:
            payouts._credit(credit.account, credit.amount, reference)
    if req.max_fee > fee:
        payouts._credit(req.requester, req.max_fee - fee, reference)
    return fee


@internal
def _callback(request_id: uint256, req: Request, output: Bytes[MAX_OUTPUT_BYTES]):
    """
    @dev Last thing a settlement does: exactly callback_gas gas, no return data, failure logged.
    """
    if req.callback == empty(address):
        return
    # 63/64 of the remaining gas is forwarded at most (EIP-150): make sure that is enough, so
    # a finaliser cannot starve the callback into a failure.
    self._require(msg.gas >= req.callback_gas * 64 // 63 + CALLBACK_RESERVE, "InsufficientGas")
    success: bool = raw_call(
        req.callback,
        abi_encode(request_id, req.version_id, output, method_id=method_id("on_result(uint256,bytes32,bytes)")),
        gas=req.callback_gas,
        max_outsize=0,
        revert_on_failure=False,
    )
    log CallbackResult(request_id=request_id, callback=req.callback, success=success)




@internal
@pure
def _require(ok: bool, reason: String[32]):
    """
    @dev `assert ok, reason` with one shared encoder: the same Error(string) revert data, a
         fraction of the code (EIP-170 leaves no room for one encoder per assert).
    """
    if not ok:
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
