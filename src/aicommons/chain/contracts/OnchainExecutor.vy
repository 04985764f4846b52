# pragma version ~=0.4.3
"""
@title OnchainExecutor: exact integer inference of registered models, inside the chain
@notice One generic interpreter for the aicommons v1 integer semantics (dense layers with int8
        weights, int32 bias, per-channel requantisation `clamp(rshift_round(acc * M, S), lo, hi)`,
        ReLU as lo = 0, argmax). Models are data: a maintainer uploads a version's program and
        weights in chunks; the program must hash to the version's registered program hash and
        every row is checked against its registered weights root before the version can run,
        so everything the executor computes with provably is what was published.
        `infer` charges the version's fee in CommonsToken, credits it to the attribution list
        and the treasury (`fee_split`; pull payments through the `payouts` module, `withdraw`),
        and logs an `Inference` receipt; `predict` is the free view variant.
        The protocol share and the treasury address are the owner's (the timelock after
        deployment: `set_protocol_share`, `set_treasury`); a change applies to fees charged
        afterwards.
@dev Gas: verified rows are repacked into "weight segment" contracts (code, not storage: reading
     24 KB of code costs a few thousand gas, the same in storage millions). Each 256-bit word holds
     several weights of one row in lanes; multiplying it by a word of lane-packed inputs leaves the
     dot product of the whole word in the top lane (SWAR), so one MUL does up to 10 MACs.
     A version is (model_id, version_id), as in ModelRegistry.
     Invariants:
     - token.balanceOf(self) == payouts.total_owed == sum of owed (property-tested): every fee
       is credited in full (fee_split) before it is pulled in, in the same transaction;
     - a version is ready only if keccak256(abi_encode(program, tensor_roots)) equals its
       registered program hash, the tensor roots hash to its weights root, and every chunk of
       every layer was verified against those roots and the semantics' bounds (weights
       -127..127, multiplier 1..2**31-1, shift 0..62, |bias| + in_dim * 128 * 127 < 2**31);
     - a ready version never changes; inference reads only contracts this executor created.
     Reverts use named reasons listed in docs/contracts.md.
"""

from snekmate.auth import ownable

import fee_split
import merkle
import payouts

initializes: ownable
initializes: payouts

exports: (
    payouts.token,
    payouts.owed,
    payouts.total_owed,
    payouts.withdraw,
    ownable.owner,
    ownable.transfer_ownership,
)

MAX_LAYERS: constant(uint256) = 8
MAX_WIDTH: constant(uint256) = 1024
MAX_TENSORS: constant(uint256) = 64
MAX_CHUNKS: constant(uint256) = 256
# Words per segment contract (at most 766 fit the 24 576-byte code limit). Smaller segments cost
# one more account access each, larger ones more memory per call; 360 measured best here.
SEGMENT_WORDS: constant(uint256) = 360
# A chunk is an aligned block of 2**height rows, at most 64.
MAX_CHUNK_HEIGHT: constant(uint256) = 6
MAX_CHUNK_ROWS: constant(uint256) = 2**MAX_CHUNK_HEIGHT
MAX_CHUNK_BYTES: constant(uint256) = 8192
CHANNEL_BYTES: constant(uint256) = MAX_CHUNK_ROWS * 4  # one int32 per output channel of a chunk
MAX_PACKED_INPUT_WORDS: constant(uint256) = 128
MAX_OUTPUT: constant(uint256) = 128
MAX_SEGMENTS: constant(uint256) = 128
# The program contract: layer count, then per layer a config word and its segment addresses.
PROGRAM_WORDS: constant(uint256) = 1 + MAX_LAYERS + MAX_SEGMENTS
# The dot-product loop takes a block of eight input words per pass (held in locals) and runs it
# over every row of a segment; rows are padded with zero words to whole blocks.
BLOCK: constant(uint256) = 8
MAX_BLOCKS: constant(uint256) = MAX_PACKED_INPUT_WORDS // BLOCK
MASK32: constant(uint256) = 2**32 - 1
INT32_MIN: constant(int256) = -(2**31)
INT32_MAX: constant(int256) = 2**31 - 1
_SHARE_MASK: constant(uint256) = 2**96 - 1
# Row header: bias-folded constant C (offset by 2**127) << 48 | multiplier << 8 | shift.
HEADER_C_OFFSET: constant(int256) = 2**127
# Lane offsets: weights are stored as u = w + 127 in [0, 254], inputs as x + 128 in [0, 255].
WEIGHT_OFFSET: constant(int256) = 127
INPUT_OFFSET: constant(int256) = 128
# The largest |x * w| of one input: 128 * 127.
FAN_IN_TERM: constant(int256) = 128 * 127


interface Registry:
    def inference_terms(model_id: bytes32, version_id: bytes32) -> (bool, bool, uint256): view
    def attribution(model_id: bytes32, version_id: bytes32) -> DynArray[
        fee_split.Attribution, fee_split.MAX_ATTRIBUTION
    ]: view
    def weights_root(model_id: bytes32, version_id: bytes32) -> bytes32: view
    def program_hash(model_id: bytes32, version_id: bytes32) -> bytes32: view
    def publisher(model_id: bytes32, version_id: bytes32) -> address: view
    def is_maintainer(model_id: bytes32, account: address) -> bool: view


interface WeightSegment:
    # A segment's code returns its ABI-encoded words for any call (see _segment_initcode).
    def words() -> DynArray[uint256, SEGMENT_WORDS]: view


interface ProgramData:
    # The same code shape as a segment, holding the (short) inference program.
    def words() -> DynArray[uint256, PROGRAM_WORDS]: view


struct LayerProgram:
    # One dense layer as the program hash commits it (chain.executor.program_hash). Tensors are
    # indices among the version's tensors sorted by name (the leaves of its weights root).
    weight_tensor: uint256  # W[out, in], int8
    bias_tensor: uint256  # bias[out], int32
    multiplier_tensor: uint256  # M[out], int32
    shift_tensor: uint256  # S[out], int32
    in_dim: uint256
    out_dim: uint256
    lo: int256
    hi: int256


struct Layer:
    in_dim: uint256
    out_dim: uint256
    lo: int256
    hi: int256
    chunk_height: uint256
    chunk_count: uint256
    lanes: uint256
    lane_bits: uint256
    weight_root: bytes32
    bias_root: bytes32
    multiplier_root: bytes32
    shift_root: bytes32
    chunks_done: uint256  # bit i set once chunk i is verified and stored


struct Upload:
    layer_count: uint256
    chunks_remaining: uint256
    ready: bool
    program_hash: bytes32
    uploader: address
    program: address  # set when the last chunk is verified; inference reads only this


event UploadStarted:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    uploader: indexed(address)
    program_hash: bytes32
    layer_count: uint256
    chunk_count: uint256


event ChunkVerified:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    layer: uint256
    chunk: uint256
    segment: address


event ModelReady:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    program: address


event Inference:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    caller: indexed(address)
    input_hash: bytes32
    output_hash: bytes32
    label: uint256
    fee: uint256
    output: DynArray[int256, MAX_OUTPUT]


event ProtocolShareSet:
    owner: indexed(address)
    protocol_share_bps: uint256


event TreasurySet:
    owner: indexed(address)
    treasury: indexed(address)


registry: public(immutable(Registry))
# The fee terms in one word (one storage read per fee): treasury << 96 | protocol share in bps.
_fee_terms: uint256

# All keyed by (model_id, version_id).
uploads: public(HashMap[bytes32, HashMap[bytes32, Upload]])
layers: public(HashMap[bytes32, HashMap[bytes32, HashMap[uint256, Layer]]])
# Last key: layer * MAX_CHUNKS + chunk.
segments: public(HashMap[bytes32, HashMap[bytes32, HashMap[uint256, address]]])


@deploy
def __init__(registry_: address, token_: address, treasury_: address, protocol_share_bps_: uint256):
    """
    @param registry_ The ModelRegistry whose versions this executor runs.
    @param token_ The fee token (CommonsToken).
    @param treasury_ Receives the protocol share and rounding dust of every fee.
    @param protocol_share_bps_ Share of every fee (basis points) kept for the treasury before
           the attribution split; the treasury also gets whatever attribution leaves unassigned.
    """
    assert registry_ != empty(address), "ZeroAddress"
    ownable.__init__()
    payouts.__init__(token_)
    registry = Registry(registry_)
    self._set_protocol_share(protocol_share_bps_)
    self._set_treasury(treasury_)


@external
@view
def treasury() -> address:
    """
    @return Receives the protocol share and rounding dust of every fee.
    """
    return convert(self._fee_terms >> 96, address)


@external
@view
def protocol_share_bps() -> uint256:
    """
    @return Share of every fee (basis points) kept for the treasury before the attribution split.
    """
    return self._fee_terms & _SHARE_MASK


@external
def set_protocol_share(protocol_share_bps_: uint256):
    """
    @notice The owner (the timelock) sets the protocol share of fees charged from now on.
    @param protocol_share_bps_ Basis points, 0..10000.
    """
    assert msg.sender == ownable.owner, "NotGovernance"
    self._set_protocol_share(protocol_share_bps_)


@external
def set_treasury(treasury_: address):
    """
    @notice The owner (the timelock) names the account credited with the protocol share from
            now on (what the old treasury is owed stays its to withdraw).
    @param treasury_ Not the zero address.
    """
    assert msg.sender == ownable.owner, "NotGovernance"
    self._set_treasury(treasury_)


@internal
def _set_protocol_share(protocol_share_bps_: uint256):
    assert protocol_share_bps_ <= fee_split.BPS, "InvalidProtocolShare"
    self._fee_terms = (self._fee_terms & ~_SHARE_MASK) | protocol_share_bps_
    log ProtocolShareSet(owner=msg.sender, protocol_share_bps=protocol_share_bps_)


@internal
def _set_treasury(treasury_: address):
    assert treasury_ != empty(address), "ZeroAddress"
    self._fee_terms = convert(treasury_, uint256) << 96 | (self._fee_terms & _SHARE_MASK)
    log TreasurySet(owner=msg.sender, treasury=treasury_)


# ---------------------------------------------------------------------------------------------
# Upload: begin with the program and every tensor root, then one verified chunk per call.
# ---------------------------------------------------------------------------------------------


@external
def begin_upload(
    model_id: bytes32,
    version_id: bytes32,
    program: DynArray[LayerProgram, MAX_LAYERS],
    chunk_heights: DynArray[uint256, MAX_LAYERS],
    tensor_roots: DynArray[bytes32, MAX_TENSORS],
):
    """
    @notice Start the upload of a registered version, or restart one that is not ready yet.
    @dev Everything the executor computes with is committed before any chunk is accepted:
         keccak256(abi_encode(program, tensor_roots)) must equal the version's registered
         program hash (ProgramMismatch) — layer order, which tensor plays which role, the
         widths and the clamp bounds — and the Merkle root of `tensor_roots` must equal its
         weights root (WeightsRootMismatch), which pins every row later uploaded. The chunk
         heights are layout only (how rows are grouped into calls and segments).
         Any maintainer may start; only the account that started it, or the version's
         publisher, may restart it (a restart discards the chunks uploaded so far).
    @param model_id The model.
    @param version_id The version, published under `model_id`.
    @param program The version's dense layers, in order, as `chain.executor.program_hash` hashes.
    @param chunk_heights Per layer: a chunk is an aligned block of 2**height rows.
    @param tensor_roots All of the version's tensor roots in tensor-name order.
    """
    exists: bool = False
    deprecated: bool = False
    fee: uint256 = 0
    exists, deprecated, fee = staticcall registry.inference_terms(model_id, version_id)
    assert exists, "UnknownVersion"
    assert staticcall registry.is_maintainer(model_id, msg.sender), "NotMaintainer"
    assert not deprecated, "VersionDeprecated"
    previous: Upload = self.uploads[model_id][version_id]
    assert not previous.ready, "AlreadyReady"
    if previous.layer_count > 0 and msg.sender != previous.uploader:
        assert msg.sender == staticcall registry.publisher(model_id, version_id), "NotUploader"
    program_hash: bytes32 = keccak256(abi_encode(program, tensor_roots))
    assert program_hash == staticcall registry.program_hash(model_id, version_id), "ProgramMismatch"
    count: uint256 = len(program)
    assert count > 0, "InvalidProgram"
    assert len(chunk_heights) == count, "InvalidChunking"

    digests: DynArray[bytes32, merkle.MAX_CHUNK_LEAVES] = []
    for root: bytes32 in tensor_roots:
        digests.append(merkle.leaf_hash_bytes32(root))
    tensors_root: bytes32 = merkle.root_from_inner(
        len(tensor_roots), merkle.subtree_root(digests, merkle.tree_depth(len(tensor_roots)))
    )
    assert tensors_root == staticcall registry.weights_root(model_id, version_id), "WeightsRootMismatch"

    total_chunks: uint256 = 0
    for i: uint256 in range(count, bound=MAX_LAYERS):
        spec: LayerProgram = program[i]
        height: uint256 = chunk_heights[i]
        assert spec.in_dim > 0 and spec.in_dim <= MAX_WIDTH, "InvalidProgram"
        assert spec.out_dim > 0 and spec.out_dim <= MAX_WIDTH, "InvalidProgram"
        if i > 0:
            assert spec.in_dim == program[i - 1].out_dim, "InvalidProgram"
        assert spec.lo <= spec.hi, "InvalidClamp"
        if i + 1 < count:
            # Hidden activations are int8: the next layer's lanes assume it.
            assert spec.lo >= -128 and spec.hi <= 127, "InvalidClamp"
        else:
            assert spec.lo >= INT32_MIN and spec.hi <= INT32_MAX, "InvalidClamp"
            assert spec.out_dim <= MAX_OUTPUT, "InvalidProgram"
        assert spec.weight_tensor < len(tensor_roots), "InvalidProgram"
        assert spec.bias_tensor < len(tensor_roots), "InvalidProgram"
        assert spec.multiplier_tensor < len(tensor_roots), "InvalidProgram"
        assert spec.shift_tensor < len(tensor_roots), "InvalidProgram"

        lanes: uint256 = 0
        lane_bits: uint256 = 0
        lanes, lane_bits = self._lane_layout(spec.in_dim)
        row_words: uint256 = self._row_words(spec.in_dim, lanes) + 1
        assert height <= MAX_CHUNK_HEIGHT, "InvalidChunking"
        chunk_rows: uint256 = 1 << height
        assert chunk_rows * row_words <= SEGMENT_WORDS, "InvalidChunking"
        assert chunk_rows * spec.in_dim <= MAX_CHUNK_BYTES, "InvalidChunking"
        chunk_count: uint256 = (spec.out_dim + chunk_rows - 1) // chunk_rows
        assert chunk_count <= MAX_CHUNKS, "InvalidChunking"
        # A chunk must be a subtree of the row tree: no taller than the tree itself.
        assert height <= merkle.tree_depth(spec.out_dim) or chunk_count == 1, "InvalidChunking"
        total_chunks += chunk_count
        assert total_chunks <= MAX_SEGMENTS, "InvalidChunking"

        self.layers[model_id][version_id][i] = Layer(
            in_dim=spec.in_dim,
            out_dim=spec.out_dim,
            lo=spec.lo,
            hi=spec.hi,
            chunk_height=min(height, merkle.tree_depth(spec.out_dim)),
            chunk_count=chunk_count,
            lanes=lanes,
            lane_bits=lane_bits,
            weight_root=tensor_roots[spec.weight_tensor],
            bias_root=tensor_roots[spec.bias_tensor],
            multiplier_root=tensor_roots[spec.multiplier_tensor],
            shift_root=tensor_roots[spec.shift_tensor],
            chunks_done=0,
        )

    self.uploads[model_id][version_id] = Upload(
        layer_count=count,
        chunks_remaining=total_chunks,
        ready=False,
        program_hash=program_hash,
        uploader=msg.sender,
        program=empty(address),
    )
    log UploadStarted(
        model_id=model_id,
        version_id=version_id,
        uploader=msg.sender,
        program_hash=program_hash,
        layer_count=count,
        chunk_count=total_chunks,
    )


@external
def upload_chunk(
    model_id: bytes32,
    version_id: bytes32,
    layer_index: uint256,
    chunk_index: uint256,
    weight_rows: Bytes[MAX_CHUNK_BYTES],
    weight_siblings: DynArray[bytes32, merkle.MAX_DEPTH],
    bias_rows: Bytes[CHANNEL_BYTES],
    bias_siblings: DynArray[bytes32, merkle.MAX_DEPTH],
    multiplier_rows: Bytes[CHANNEL_BYTES],
    multiplier_siblings: DynArray[bytes32, merkle.MAX_DEPTH],
    shift_rows: Bytes[CHANNEL_BYTES],
    shift_siblings: DynArray[bytes32, merkle.MAX_DEPTH],
):
    """
    @notice Verify one chunk of a layer — output channels [chunk * 2**h, (chunk + 1) * 2**h) of
            W, bias, multiplier and shift — against the layer's four tensor roots and store it,
            repacked for inference, as a segment contract. Chunks may come in any order; the
            last one makes the version ready (`ModelReady`).
    @dev Also checks every row against the semantics' bounds (WeightOutOfRange,
         InvalidQuantParams, FanInBound), so the executor never runs a package the runtime
         refuses.
    @param model_id The model.
    @param version_id The version whose upload the caller started.
    @param layer_index The layer, 0-based.
    @param chunk_index The chunk within the layer.
    @param weight_rows The chunk's rows of W, each `in_dim` int8 bytes, concatenated.
    @param weight_siblings Proof of the chunk's subtree node in W's row tree (from level h up).
    @param bias_rows The chunk's bias entries, 4 bytes big-endian two's complement each; the
           multiplier and shift rows and their siblings likewise.
    """
    upload: Upload = self.uploads[model_id][version_id]
    assert upload.layer_count > 0, "UploadNotStarted"
    assert upload.uploader == msg.sender, "NotUploader"
    assert not upload.ready, "AlreadyReady"
    assert layer_index < upload.layer_count, "UnknownLayer"
    layer: Layer = self.layers[model_id][version_id][layer_index]
    assert chunk_index < layer.chunk_count, "UnknownChunk"
    assert layer.chunks_done & (1 << chunk_index) == 0, "ChunkAlreadyUploaded"

    first_row: uint256 = chunk_index << layer.chunk_height
    rows: uint256 = min(1 << layer.chunk_height, layer.out_dim - first_row)
    assert len(weight_rows) == rows * layer.in_dim, "ChunkSizeMismatch"
    assert len(bias_rows) == rows * 4, "ChunkSizeMismatch"
    assert len(multiplier_rows) == rows * 4, "ChunkSizeMismatch"
    assert len(shift_rows) == rows * 4, "ChunkSizeMismatch"
    assert self._rows_match(
        weight_rows, layer.in_dim, rows, layer, chunk_index, weight_siblings, layer.weight_root
    ), "WeightRowsMismatch"
    assert self._rows_match(
        bias_rows, 4, rows, layer, chunk_index, bias_siblings, layer.bias_root
    ), "BiasRowsMismatch"
    assert self._rows_match(
        multiplier_rows, 4, rows, layer, chunk_index, multiplier_siblings, layer.multiplier_root
    ), "MultiplierRowsMismatch"
    assert self._rows_match(
        shift_rows, 4, rows, layer, chunk_index, shift_siblings, layer.shift_root
    ), "ShiftRowsMismatch"

    words: DynArray[uint256, SEGMENT_WORDS] = self._pack_rows(
        layer, rows, weight_rows, bias_rows, multiplier_rows, shift_rows
    )
    segment: address = raw_create(self._segment_initcode(words))

    key: uint256 = layer_index * MAX_CHUNKS + chunk_index
    self.segments[model_id][version_id][key] = segment
    self.layers[model_id][version_id][layer_index].chunks_done = layer.chunks_done | (
        1 << chunk_index
    )
    self.uploads[model_id][version_id].chunks_remaining = upload.chunks_remaining - 1
    log ChunkVerified(
        model_id=model_id,
        version_id=version_id,
        layer=layer_index,
        chunk=chunk_index,
        segment=segment,
    )
    if upload.chunks_remaining == 1:
        program: address = raw_create(
            self._segment_initcode(self._program_words(model_id, version_id, upload.layer_count))
        )
        self.uploads[model_id][version_id].program = program
        self.uploads[model_id][version_id].ready = True
        log ModelReady(model_id=model_id, version_id=version_id, program=program)


# ---------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------


@external
def infer(
    model_id: bytes32, version_id: bytes32, input: Bytes[MAX_WIDTH]
) -> (DynArray[int256, MAX_OUTPUT], uint256):
    """
    @notice Run the version on `input`, pay its fee, and log the `Inference` receipt. The
            caller must have approved the fee to this contract.
    @param model_id The model.
    @param version_id A ready, not deprecated version of it.
    @param input One int8 per byte (two's complement), as many as the first layer's fan-in.
    @return The final layer's outputs and their argmax (lowest index on ties).
    """
    fee: uint256 = 0
    program: address = empty(address)
    fee, program = self._check_version(model_id, version_id)
    if fee > 0:
        self._charge(model_id, version_id, fee)
    output: DynArray[int256, MAX_OUTPUT] = self._run(program, input)
    label: uint256 = self._argmax(output)
    log Inference(
        model_id=model_id,
        version_id=version_id,
        caller=msg.sender,
        input_hash=keccak256(input),
        output_hash=keccak256(abi_encode(output)),
        label=label,
        fee=fee,
        output=output,
    )
    if fee > 0:
        # The only interaction, after every effect; the token is fixed at deploy.
        assert extcall payouts.token.transferFrom(
            msg.sender, self, fee, default_return_value=True
        ), "FeeUnpaid"
    return output, label


@external
@view
def predict(
    model_id: bytes32, version_id: bytes32, input: Bytes[MAX_WIDTH]
) -> (DynArray[int256, MAX_OUTPUT], uint256):
    """
    @notice The same computation as `infer`, free, with no receipt and no payment.
    @dev Kept on purpose (docs/contracts.md, "Why predict is free"): the weights are public, so
         anyone can compute this off-chain anyway; the fee buys the receipt — a logged,
         attributable inference other contracts can rely on — and funds the model.
    @param model_id The model.
    @param version_id A ready, not deprecated version of it.
    @param input As for `infer`.
    @return The final layer's outputs and their argmax, exactly as `infer` returns them.
    """
    fee: uint256 = 0
    program: address = empty(address)
    fee, program = self._check_version(model_id, version_id)
    output: DynArray[int256, MAX_OUTPUT] = self._run(program, input)
    return output, self._argmax(output)


@external
@view
def is_ready(model_id: bytes32, version_id: bytes32) -> bool:
    """
    @return True once every chunk of the version is verified (it never changes back).
    """
    return self.uploads[model_id][version_id].ready


@external
@view
def program_hash(model_id: bytes32, version_id: bytes32) -> bytes32:
    """
    @return The program hash of the version's current upload (zero before `begin_upload`);
            once ready, it equals the registered program hash.
    """
    return self.uploads[model_id][version_id].program_hash


@external
@view
def input_size(model_id: bytes32, version_id: bytes32) -> uint256:
    """
    @return The first layer's fan-in (bytes of `input`); zero before `begin_upload`.
    """
    return self.layers[model_id][version_id][0].in_dim


@external
@view
def program_words(model_id: bytes32, version_id: bytes32) -> DynArray[uint256, PROGRAM_WORDS]:
    """
    @notice The inference program of a ready version (see docs/contracts.md for the layout).
    @return [layer count, then per layer its config word and segment addresses].
    """
    program: address = self.uploads[model_id][version_id].program
    assert program != empty(address), "ModelNotReady"
    return staticcall ProgramData(program).words()


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


@internal
@view
def _check_version(model_id: bytes32, version_id: bytes32) -> (uint256, address):
    exists: bool = False
    deprecated: bool = False
    fee: uint256 = 0
    exists, deprecated, fee = staticcall registry.inference_terms(model_id, version_id)
    assert exists, "UnknownVersion"
    assert not deprecated, "VersionDeprecated"
    program: address = self.uploads[model_id][version_id].program
    assert program != empty(address), "ModelNotReady"
    return fee, program


@internal
def _charge(model_id: bytes32, version_id: bytes32, fee: uint256):
    """
    @dev Credits first (effects); `infer` pulls the fee in afterwards. `fee_split` gives the
         protocol share, unassigned shares and rounding dust to the treasury, so the credits
         sum to the fee and `total_owed` rises by exactly what the pull brings in.
    """
    assert staticcall payouts.token.allowance(msg.sender, self) >= fee, "FeeNotApproved"
    assert staticcall payouts.token.balanceOf(msg.sender) >= fee, "FeeUnpaid"
    attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION] = (
        staticcall registry.attribution(model_id, version_id)
    )
    terms: uint256 = self._fee_terms
    credits: DynArray[fee_split.Credit, fee_split.MAX_CREDITS] = fee_split.split(
        fee, terms & _SHARE_MASK, attribution, convert(terms >> 96, address)
    )
    for credit: fee_split.Credit in credits:
        payouts._credit(credit.account, credit.amount, version_id)


@internal
@pure
def _lane_layout(in_dim: uint256) -> (uint256, uint256):
    """
    @dev (lanes, lane_bits) for a fan-in. Inputs sit in lanes 0..n-1 of one word, weights in
         reverse order in another, so lane n-1 of their product is the dot product of the n
         pairs; lanes >= n fall off the top (lanes * bits >= 256). The top lane keeps
         256 - (n-1)*bits bits and must hold in_dim * 255 * 254; each lower lane must hold its
         sum over all words of a row without carrying into the top lane.
    """
    if in_dim <= 64:
        return 10, 26  # top lane 22 bits: 64 * 64770 < 2**22
    if in_dim <= 258:
        return 9, 29  # top lane 24 bits: 258 * 64770 < 2**24
    return 8, 32  # top lane 32 bits


@internal
@pure
def _rows_match(
    rows_bytes: Bytes[MAX_CHUNK_BYTES],
    row_bytes: uint256,
    rows: uint256,
    layer: Layer,
    chunk_index: uint256,
    siblings: DynArray[bytes32, merkle.MAX_DEPTH],
    root: bytes32,
) -> bool:
    """
    @dev True iff `rows` rows of `row_bytes` bytes are the leaves of chunk `chunk_index` (an
         aligned subtree of height chunk_height) of the out_dim-leaf tree under `root`.
    """
    if len(siblings) != merkle.tree_depth(layer.out_dim) - layer.chunk_height:
        return False
    digests: DynArray[bytes32, merkle.MAX_CHUNK_LEAVES] = []
    for r: uint256 in range(rows, bound=MAX_CHUNK_ROWS):
        digests.append(keccak256(concat(b"\x00", slice(rows_bytes, r * row_bytes, row_bytes))))
    node: bytes32 = merkle.subtree_root(digests, layer.chunk_height)
    return merkle.root_from_inner(layer.out_dim, merkle.climb(node, chunk_index, siblings)) == root


@internal
@pure
def _int32_at(padded: Bytes[CHANNEL_BYTES + 32], row: uint256) -> uint256:
    """
    @dev The raw 32-bit word of entry `row` (4 bytes big-endian) of a zero-padded channel buffer.
    """
    return extract32(padded, row * 4, output_type=uint256) >> 224


@internal
@pure
def _pack_rows(
    layer: Layer,
    rows: uint256,
    weight_rows: Bytes[MAX_CHUNK_BYTES],
    bias_rows: Bytes[CHANNEL_BYTES],
    multiplier_rows: Bytes[CHANNEL_BYTES],
    shift_rows: Bytes[CHANNEL_BYTES],
) -> DynArray[uint256, SEGMENT_WORDS]:
    """
    @dev Segment layout: the rows' header words (bias folded with the lane offsets, multiplier,
         shift), then block-major weight words: for each block q, for each row, the row's words
         8q .. 8q+7, where lane (lanes - 1 - t) of a word holds u = w + 127 for input t of it.
         With x' = x + 128: sum(w*x) = sum(u*x') - 128*sum(u) - 127*sum(x') + 127*128*in_dim,
         so C = bias - 128*sum(u) + 16256*in_dim is a per-row constant.
    """
    row_major: DynArray[uint256, SEGMENT_WORDS] = []
    words: DynArray[uint256, SEGMENT_WORDS] = []
    padded: Bytes[MAX_CHUNK_BYTES + 32] = concat(weight_rows, empty(bytes32))
    padded_bias: Bytes[CHANNEL_BYTES + 32] = concat(bias_rows, empty(bytes32))
    padded_multipliers: Bytes[CHANNEL_BYTES + 32] = concat(multiplier_rows, empty(bytes32))
    padded_shifts: Bytes[CHANNEL_BYTES + 32] = concat(shift_rows, empty(bytes32))
    n: uint256 = layer.lanes
    b: uint256 = layer.lane_bits
    row_words: uint256 = self._row_words(layer.in_dim, n)
    for r: uint256 in range(rows, bound=MAX_CHUNK_ROWS):
        # int32 entries as raw 32-bit words: a negative multiplier or shift reads as >= 2**31.
        multiplier: uint256 = self._int32_at(padded_multipliers, r)
        shift_bits: uint256 = self._int32_at(padded_shifts, r)
        assert multiplier >= 1 and multiplier <= 2**31 - 1, "InvalidQuantParams"
        assert shift_bits <= 62, "InvalidQuantParams"
        u_sum: uint256 = 0
        base: uint256 = r * layer.in_dim
        row_block: uint256 = 0
        k: uint256 = 0
        for j: uint256 in range(row_words, bound=MAX_PACKED_INPUT_WORDS):
            word: uint256 = 0
            for t: uint256 in range(n, bound=10):
                if k >= layer.in_dim:
                    break
                if k % 32 == 0:
                    row_block = extract32(padded, base + k, output_type=uint256)
                raw: uint256 = (row_block >> (248 - 8 * (k % 32))) & 255
                assert raw != 128, "WeightOutOfRange"
                u: uint256 = (raw + 127) & 255
                u_sum += u
                word |= u << (b * (n - 1 - t))
                k += 1
            row_major.append(word)
        bias_word: uint256 = self._int32_at(padded_bias, r)
        bias: int256 = convert(bias_word, int256)
        if bias_word >= 2**31:
            bias -= 2**32
        # The semantics' fan-in bound (docs/integer-semantics.md): |acc| stays below 2**31.
        assert abs(bias) + FAN_IN_TERM * convert(layer.in_dim, int256) <= INT32_MAX, "FanInBound"
        constant_c: int256 = (
            bias
            - INPUT_OFFSET * convert(u_sum, int256)
            + WEIGHT_OFFSET * INPUT_OFFSET * convert(layer.in_dim, int256)
        )
        words.append(
            convert(constant_c + HEADER_C_OFFSET, uint256) << 48 | multiplier << 8 | shift_bits
        )
    for q: uint256 in range(row_words // BLOCK, bound=MAX_BLOCKS):
        for r: uint256 in range(rows, bound=MAX_CHUNK_ROWS):
            for t: uint256 in range(BLOCK):
                words.append(row_major[r * row_words + q * BLOCK + t])
    return words


@internal
@pure
def _segment_initcode(words: DynArray[uint256, SEGMENT_WORDS]) -> Bytes[SEGMENT_WORDS * 32 + 86]:
    """
    @dev Creation code of a segment: deploys `stub || abi_encode(words)` where the 12-byte stub
         (CODECOPY the payload to memory 0, RETURN it) answers every call with the words.
    """
    payload: Bytes[SEGMENT_WORDS * 32 + 64] = abi_encode(words)
    size: uint256 = len(payload)
    runtime_size: uint256 = size + 12
    stub: Bytes[12] = concat(
        b"\x61", convert(convert(size, uint16), bytes2), b"\x60\x0c\x5f\x39\x61",
        convert(convert(size, uint16), bytes2), b"\x5f\xf3",
    )
    # PUSH2 runtime_size DUP1 PUSH1 10 PUSH0 CODECOPY PUSH0 RETURN (10 bytes), then the runtime.
    deployer: Bytes[10] = concat(
        b"\x61", convert(convert(runtime_size, uint16), bytes2), b"\x80\x60\x0a\x5f\x39\x5f\xf3"
    )
    return concat(deployer, stub, payload)


@internal
@pure
def _row_words(in_dim: uint256, lanes: uint256) -> uint256:
    """
    @dev Weight words per row: ceil(in_dim / lanes), rounded up to a multiple of BLOCK.
    """
    words: uint256 = (in_dim + lanes - 1) // lanes
    return (words + BLOCK - 1) // BLOCK * BLOCK


@internal
@view
def _program_words(
    model_id: bytes32, version_id: bytes32, layer_count: uint256
) -> DynArray[uint256, SEGMENT_WORDS]:
    """
    @dev [layer_count, then per layer: config, segment address per chunk]. The config packs
         in_dim | out_dim << 16 | lanes << 32 | lane_bits << 40 | chunk_count << 48 |
         (lo + 2**32) << 64 | (hi + 2**32) << 128, so inference reads one word per layer.
    """
    words: DynArray[uint256, SEGMENT_WORDS] = [layer_count]
    for l: uint256 in range(layer_count, bound=MAX_LAYERS):
        layer: Layer = self.layers[model_id][version_id][l]
        words.append(
            layer.in_dim
            | layer.out_dim << 16
            | layer.lanes << 32
            | layer.lane_bits << 40
            | layer.chunk_count << 48
            | convert(layer.lo + 2**32, uint256) << 64
            | convert(layer.hi + 2**32, uint256) << 128
        )
        for chunk: uint256 in range(layer.chunk_count, bound=MAX_SEGMENTS):
            words.append(
                convert(self.segments[model_id][version_id][l * MAX_CHUNKS + chunk], uint256)
            )
    return words


@internal
@view
def _run(program: address, input: Bytes[MAX_WIDTH]) -> DynArray[int256, MAX_OUTPUT]:
    """
    @dev Activations never exist as an array: each layer writes its outputs, offset to
         x' = y + 128, straight into the lane-packed words the next layer multiplies with.
    """
    prog: DynArray[uint256, PROGRAM_WORDS] = staticcall ProgramData(program).words()
    layer_count: uint256 = prog[0]
    config: uint256 = prog[1]
    in_dim: uint256 = config & 65535
    assert len(input) == in_dim, "InputLengthMismatch"

    # Layer 0's inputs: bytes are two's complement int8; lane t of word j holds x'[j*n + t].
    n: uint256 = (config >> 32) & 255
    b: uint256 = (config >> 40) & 255
    packed: uint256[MAX_PACKED_INPUT_WORDS] = empty(uint256[MAX_PACKED_INPUT_WORDS])
    input_sum: uint256 = 0
    padded_input: Bytes[MAX_WIDTH + 32] = concat(input, empty(bytes32))
    input_block: uint256 = 0
    word: uint256 = 0
    word_index: uint256 = 0
    lane: uint256 = 0
    lane_shift: uint256 = 0
    for k: uint256 in range(in_dim, bound=MAX_WIDTH):
        if k & 31 == 0:
            input_block = extract32(padded_input, k, output_type=uint256)
        value: uint256 = unsafe_add(input_block >> 248, 128) & 255
        input_block = input_block << 8
        input_sum = unsafe_add(input_sum, value)
        word = word | (value << lane_shift)
        lane = unsafe_add(lane, 1)
        lane_shift = unsafe_add(lane_shift, b)
        if lane == n:
            packed[word_index] = word
            word = 0
            lane = 0
            lane_shift = 0
            word_index = unsafe_add(word_index, 1)
    if lane != 0:
        packed[word_index] = word

    output: DynArray[int256, MAX_OUTPUT] = []
    cursor: uint256 = 1
    for l: uint256 in range(layer_count, bound=MAX_LAYERS):
        config = prog[cursor]
        in_dim = config & 65535
        n = (config >> 32) & 255
        b = (config >> 40) & 255
        chunk_count: uint256 = (config >> 48) & 65535
        lo: int256 = convert((config >> 64) & (2**64 - 1), int256) - 2**32
        hi: int256 = convert(config >> 128, int256) - 2**32
        top_shift: uint256 = b * (n - 1)
        blocks: uint256 = self._row_words(in_dim, n) // BLOCK
        row_length: uint256 = blocks * BLOCK + 1
        # C - 127 * sum(x') is what each row adds to its lane sum, minus the header offset.
        input_term: int256 = WEIGHT_OFFSET * convert(input_sum, int256) + HEADER_C_OFFSET
        last: bool = l + 1 == layer_count

        # Lane layout of the next layer, which this layer's outputs are packed for.
        next_n: uint256 = 1
        next_b: uint256 = 0
        if not last:
            next_config: uint256 = prog[cursor + 1 + chunk_count]
            next_n = (next_config >> 32) & 255
            next_b = (next_config >> 40) & 255
        next_packed: uint256[MAX_PACKED_INPUT_WORDS] = empty(uint256[MAX_PACKED_INPUT_WORDS])
        next_sum: uint256 = 0
        next_word: uint256 = 0  # the word being filled; stored once it is full
        word_index = 0
        lane = 0
        lane_shift = 0

        for chunk: uint256 in range(chunk_count, bound=MAX_SEGMENTS):
            segment: address = convert(convert(prog[cursor + 1 + chunk], uint160), address)
            words: DynArray[uint256, SEGMENT_WORDS] = staticcall WeightSegment(segment).words()
            rows_here: uint256 = len(words) // row_length
            position: uint256 = rows_here
            p0: uint256 = packed[0]
            p1: uint256 = packed[1]
            p2: uint256 = packed[2]
            p3: uint256 = packed[3]
            p4: uint256 = packed[4]
            p5: uint256 = packed[5]
            p6: uint256 = packed[6]
            p7: uint256 = packed[7]
            # Fan-in of more than one block: accumulate every row's dot product block by block.
            # With a single block (fan-in <= 80) the row loop below does it inline.
            dots: uint256[MAX_CHUNK_ROWS] = empty(uint256[MAX_CHUNK_ROWS])
            if blocks > 1:
                for q: uint256 in range(blocks, bound=MAX_BLOCKS):
                    j: uint256 = unsafe_mul(q, BLOCK)
                    p0 = packed[j]
                    p1 = packed[unsafe_add(j, 1)]
                    p2 = packed[unsafe_add(j, 2)]
                    p3 = packed[unsafe_add(j, 3)]
                    p4 = packed[unsafe_add(j, 4)]
                    p5 = packed[unsafe_add(j, 5)]
                    p6 = packed[unsafe_add(j, 6)]
                    p7 = packed[unsafe_add(j, 7)]
                    for r: uint256 in range(rows_here, bound=MAX_CHUNK_ROWS):
                        dots[r] = unsafe_add(
                            dots[r],
                            unsafe_add(
                                unsafe_add(
                                    unsafe_add(
                                        unsafe_mul(words[position], p0),
                                        unsafe_mul(words[unsafe_add(position, 1)], p1),
                                    ),
                                    unsafe_add(
                                        unsafe_mul(words[unsafe_add(position, 2)], p2),
                                        unsafe_mul(words[unsafe_add(position, 3)], p3),
                                    ),
                                ),
                                unsafe_add(
                                    unsafe_add(
                                        unsafe_mul(words[unsafe_add(position, 4)], p4),
                                        unsafe_mul(words[unsafe_add(position, 5)], p5),
                                    ),
                                    unsafe_add(
                                        unsafe_mul(words[unsafe_add(position, 6)], p6),
                                        unsafe_mul(words[unsafe_add(position, 7)], p7),
                                    ),
                                ),
                            ),
                        )
                        position = unsafe_add(position, BLOCK)

            for r: uint256 in range(rows_here, bound=MAX_CHUNK_ROWS):
                dot: uint256 = 0
                if blocks == 1:
                    dot = unsafe_add(
                            unsafe_add(
                                unsafe_add(
                                    unsafe_mul(words[position], p0),
                                    unsafe_mul(words[unsafe_add(position, 1)], p1),
                                ),
                                unsafe_add(
                                    unsafe_mul(words[unsafe_add(position, 2)], p2),
                                    unsafe_mul(words[unsafe_add(position, 3)], p3),
                                ),
                            ),
                            unsafe_add(
                                unsafe_add(
                                    unsafe_mul(words[unsafe_add(position, 4)], p4),
                                    unsafe_mul(words[unsafe_add(position, 5)], p5),
                                ),
                                unsafe_add(
                                    unsafe_mul(words[unsafe_add(position, 6)], p6),
                                    unsafe_mul(words[unsafe_add(position, 7)], p7),
                                ),
                            ),
                        )
                    position = unsafe_add(position, BLOCK)
                else:
                    dot = dots[r]
                header: uint256 = words[r]
                # |acc| < 2**40 and multiplier < 2**31, so none of this can overflow int256.
                acc: int256 = unsafe_sub(
                    convert(unsafe_add(dot >> top_shift, header >> 48), int256), input_term
                )
                value: int256 = unsafe_mul(acc, convert((header >> 8) & MASK32, int256))
                shift_bits: uint256 = header & 255
                if shift_bits != 0:
                    value = unsafe_add(value, 1 << unsafe_sub(shift_bits, 1)) >> shift_bits
                if value < lo:
                    value = lo
                elif value > hi:
                    value = hi
                if last:
                    output.append(value)
                else:
                    shifted: uint256 = convert(unsafe_add(value, INPUT_OFFSET), uint256)
                    next_sum = unsafe_add(next_sum, shifted)
                    next_word = next_word | (shifted << lane_shift)
                    lane = unsafe_add(lane, 1)
                    lane_shift = unsafe_add(lane_shift, next_b)
                    if lane == next_n:
                        next_packed[word_index] = next_word
                        next_word = 0
                        lane = 0
                        lane_shift = 0
                        word_index = unsafe_add(word_index, 1)
        if lane != 0:
            next_packed[word_index] = next_word
        cursor = cursor + 1 + chunk_count
        packed = next_packed
        input_sum = next_sum
    return output


@internal
@pure
def _argmax(values: DynArray[int256, MAX_OUTPUT]) -> uint256:
    best: uint256 = 0
    for i: uint256 in range(len(values), bound=MAX_WIDTH):
        if values[i] > values[best]:
            best = i
    return best
