# pragma version ~=0.4.3
"""
@title DisputeGame: anyone proves a posted market result wrong, down to one recomputed element
@notice The optimistic-mode referee of the ComputeMarket (docs/market.md "The dispute game").
        A challenger disputes a posted result within its window; the provider opens its trace
        root into every layer's root, the challenger names the first layer it disputes, the two
        bisect that layer's row tree down to one row, and the OneStepVerifier recomputes one
        element of it from the provider's committed inputs and the registered weights. Every
        move has a deadline and silence loses. The market holds the bonds and the stakes and
        settles each outcome (`close_dispute`); this contract holds only the games and each
        version's graph header, proven once (by anyone) against the graph root the registry
        records for the version.
@dev Invariants: a dispute moves only forward through its phases and ends exactly once (one
     `close_dispute`); a move is accepted only from the party whose turn it is, before its
     deadline, with data that matches the commitments stored at the previous move. Reverts
     through `_require` (one shared Error(string) encoder; EIP-170).
"""

from snekmate.auth import ownable

import merkle
import tensor_commit
import ComputeMarket
import OneStepVerifier

initializes: ownable

exports: (ownable.owner, ownable.transfer_ownership)

MAX_LAYERS: public(constant(uint256)) = 511
# The trace has layer count + 1 leaves of 32-byte roots, revealed as one byte string.
MAX_ROOTS_BYTES: constant(uint256) = (MAX_LAYERS + 1) * 32
MAX_OUTPUT_BYTES: constant(uint256) = ComputeMarket.MAX_OUTPUT_BYTES
MAX_ROW_BYTES: constant(uint256) = OneStepVerifier.MAX_ROW_BYTES
MAX_DEPTH: constant(uint256) = 16

# Market request status and dispute outcomes (ComputeMarket).
CLAIMED: constant(uint256) = 2
POSTED: constant(uint256) = 3
OVERTURNED: constant(uint256) = 6
CHALLENGER_WON: constant(uint256) = 1
PROVIDER_WON: constant(uint256) = 2
CANCELLED: constant(uint256) = 3

# Why a dispute ended (DisputeResolved.reason).
REASON_ONE_STEP: constant(uint256) = 1
REASON_TIMEOUT: constant(uint256) = 2
REASON_UNSUPPORTED_LAYER: constant(uint256) = 3


flag Phase:
    ROOTS  # the provider reveals its layer roots
    LAYER  # the challenger picks a layer
    REVEAL  # the provider reveals two children (or the leaf rows) of the current node
    PICK  # the challenger picks a child
    STEP  # the challenger runs the one-step check
    CHALLENGER_WON
    PROVIDER_WON
    CANCELLED


interface Registry:
    def inference_terms(model_id: bytes32, version_id: bytes32) -> (bool, bool, uint256): view
    def weights_root(model_id: bytes32, version_id: bytes32) -> bytes32: view
    def graph_root(model_id: bytes32, version_id: bytes32) -> bytes32: view


struct GraphHeader:
    layer_count: uint256
    tensor_count: uint256
    input_shape: DynArray[uint256, 4]
    output_leaf: uint256
    output_shape: DynArray[uint256, 4]
    output_bytes: uint256


struct VersionGraph:
    graph_root: bytes32
    layer_count: uint256
    tensor_count: uint256
    input_rows: uint256
    input_bytes: uint256
    output_leaf: uint256
    output_rows: uint256


struct Dispute:
    request_id: uint256
    challenger: address
    provider: address
    bond: uint256
    trace_root: bytes32
    output_hash: bytes32
    phase: Phase
    deadline: uint256
    layer: uint256
    spec_hash: bytes32
    rows: uint256
    row_bytes: uint256
    out_bytes: uint256
    level: uint256
    index: uint256
    node: bytes32
    at_root: bool
    left: bytes32
    right: bytes32


event VerifierSet:
    verifier: indexed(address)


event GraphRegistered:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    graph_root: bytes32
    header: GraphHeader


event Challenged:
    dispute_id: indexed(uint256)
    request_id: indexed(uint256)
    challenger: indexed(address)
    batch_id: uint256
    provider: address
    bond: uint256
    deadline: uint256


event RootsRevealed:
    dispute_id: indexed(uint256)
    layer_roots: Bytes[MAX_ROOTS_BYTES]
    deadline: uint256


event LayerPicked:
    dispute_id: indexed(uint256)
    layer: uint256
    rows: uint256
    deadline: uint256


event ChildrenRevealed:
    dispute_id: indexed(uint256)
    level: uint256
    index: uint256
    left: bytes32
    right: bytes32
    deadline: uint256


event ChildPicked:
    dispute_id: indexed(uint256)
    level: uint256
    index: uint256
    deadline: uint256


event RowsRevealed:
    dispute_id: indexed(uint256)
    index: uint256
    rows: DynArray[Bytes[MAX_ROW_BYTES], 2]
    deadline: uint256


event DisputeResolved:
    dispute_id: indexed(uint256)
    request_id: indexed(uint256)
    winner: indexed(address)
    reason: uint256
    layer: uint256
    row: uint256
    element: uint256
    committed: int256
    correct: int256


event DisputeCancelled:
    dispute_id: indexed(uint256)
    request_id: indexed(uint256)


market: public(immutable(ComputeMarket.__interface__))
registry: public(immutable(Registry))
verifier: public(OneStepVerifier.__interface__)
graphs: public(HashMap[bytes32, VersionGraph])  # key: keccak256(model_id ‖ version_id)
dispute_count: public(uint256)
disputes: public(HashMap[uint256, Dispute])


@deploy
def __init__(market_: address, registry_: address, verifier_: address):
    """
    @param market_ The ComputeMarket this game settles through (it must name this contract).
    @param registry_ The ModelRegistry (versions, weights and graph roots).
    @param verifier_ The OneStepVerifier (owner-settable, to add ops).
    """
    self._require(market_ != empty(address) and registry_ != empty(address), "ZeroAddress")
    self._require(verifier_ != empty(address), "ZeroAddress")
    ownable.__init__()
    market = ComputeMarket.__interface__(market_)
    registry = Registry(registry_)
    self.verifier = OneStepVerifier.__interface__(verifier_)
    log VerifierSet(verifier=verifier_)


@external
def set_verifier(verifier_: address):
    """
    @notice Switch to a new OneStepVerifier (owner only), e.g. one that knows a new op.
    """
    ownable._check_owner()
    self._require(verifier_ != empty(address), "ZeroAddress")
    self.verifier = OneStepVerifier.__interface__(verifier_)
    log VerifierSet(verifier=verifier_)


# ---------------------------------------------------------------------------------------------
# Graph commitments.
# ---------------------------------------------------------------------------------------------


@external
def register_graph(
    model_id: bytes32,
    version_id: bytes32,
    header: GraphHeader,
    header_siblings: DynArray[bytes32, MAX_DEPTH],
):
    """
    @notice Bring a version's graph header into the game (anyone, once): the graph root is the
            one the registry records for the version (`ModelRegistry.graph_root`), never a
            second statement.
    @dev The header is proven as leaf 0 of the registry's graph root and kept: the market
         checks request inputs against it and the game reveals against its layer count and
         output.
    """
    exists: bool = False
    deprecated: bool = False
    fee: uint256 = 0
    exists, deprecated, fee = staticcall registry.inference_terms(model_id, version_id)
    self._require(exists, "UnknownVersion")
    self._require(not deprecated, "VersionDeprecated")
    graph_root: bytes32 = staticcall registry.graph_root(model_id, version_id)
    self._require(graph_root != empty(bytes32), "GraphNotRegistered")
    key: bytes32 = keccak256(concat(model_id, version_id))
    self._require(self.graphs[key].graph_root == empty(bytes32), "GraphExists")
    count: uint256 = header.layer_count
    self._require(count > 0 and count <= MAX_LAYERS, "InvalidGraph")
    self._require(header.output_leaf > 0 and header.output_leaf <= count, "InvalidGraph")
    self._require(header.tensor_count > 0, "InvalidGraph")
    self._require(header.output_bytes == 1 or header.output_bytes == 4, "InvalidGraph")
    self._require(len(header.input_shape) > 0 and len(header.output_shape) > 0, "InvalidGraph")
    output_size: uint256 = self._size(header.output_shape) * header.output_bytes
    self._require(output_size <= MAX_OUTPUT_BYTES, "InvalidGraph")
    leaf: bytes32 = keccak256(concat(b"\x00", abi_encode(header)))
    self._require(merkle.verify_proof(graph_root, leaf, 0, count + 1, header_siblings), "HeaderMismatch")
    self.graphs[key] = VersionGraph(
        graph_root=graph_root,
        layer_count=count,
        tensor_count=header.tensor_count,
        input_rows=header.input_shape[0],
        input_bytes=self._size(header.input_shape),
        output_leaf=header.output_leaf,
        output_rows=header.output_shape[0],
    )
    log GraphRegistered(model_id=model_id, version_id=version_id, graph_root=graph_root, header=header)


@external
@view
def input_layout(model_id: bytes32, version_id: bytes32) -> (bool, uint256, uint256):
    """
    @return (registered, input rows, input bytes) of a version, for the market's request checks.
    """
    graph: VersionGraph = self.graphs[keccak256(concat(model_id, version_id))]
    return graph.graph_root != empty(bytes32), graph.input_rows, graph.input_bytes


@external
@view
def input_commitment(
    model_id: bytes32, version_id: bytes32, input: Bytes[ComputeMarket.MAX_INPUT_BYTES]
) -> (bytes32, bytes32):
    """
    @notice A calldata input checked against the version's graph: (keccak256(input), the
            input's tensor root). The market asks this for every calldata request.
    """
    graph: VersionGraph = self.graphs[keccak256(concat(model_id, version_id))]
    self._require(graph.graph_root != empty(bytes32), "GraphNotRegistered")
    self._require(len(input) == graph.input_bytes, "InputSizeMismatch")
    self._require(graph.input_rows <= ComputeMarket.MAX_INPUT_ROWS, "InputTooLarge")
    return keccak256(input), tensor_commit.tensor_root(input, graph.input_rows)


# ---------------------------------------------------------------------------------------------
# The game.
# ---------------------------------------------------------------------------------------------


@external
def challenge(
    request_id: uint256,
    batch_id: uint256,
    index: uint256,
    output_hash: bytes32,
    trace_root: bytes32,
    siblings: DynArray[bytes32, merkle.MAX_DEPTH],
) -> uint256:
    """
    @notice Dispute the result (output_hash, trace_root) at `index` of batch `batch_id` within
            its window. The market takes challenge_bond from the caller (approve the market).
    @return dispute_id
    """
    provider: address = empty(address)
    bond: uint256 = 0
    provider, bond = extcall market.open_dispute(
        request_id, batch_id, index, output_hash, trace_root, siblings, msg.sender
    )
    dispute_id: uint256 = self.dispute_count + 1
    self.dispute_count = dispute_id
    deadline: uint256 = block.timestamp + self._move_period()
    self.disputes[dispute_id] = Dispute(
        request_id=request_id,
        challenger=msg.sender,
        provider=provider,
        bond=bond,
        trace_root=trace_root,
        output_hash=output_hash,
        phase=Phase.ROOTS,
        deadline=deadline,
        layer=0,
        spec_hash=empty(bytes32),
        rows=0,
        row_bytes=0,
        out_bytes=0,
        level=0,
        index=0,
        node=empty(bytes32),
        at_root=False,
        left=empty(bytes32),
        right=empty(bytes32),
    )
    log Challenged(
        dispute_id=dispute_id,
        request_id=request_id,
        challenger=msg.sender,
        batch_id=batch_id,
        provider=provider,
        bond=bond,
        deadline=deadline,
    )
    return dispute_id


@external
def reveal_roots(dispute_id: uint256, layer_roots: Bytes[MAX_ROOTS_BYTES], output: Bytes[MAX_OUTPUT_BYTES]):
    """
    @notice Provider: open the trace root into every layer's tensor root (32 bytes each, the
            input's first) and show the posted output under the output layer's root.
    """
    d: Dispute = self._expect(dispute_id, Phase.ROOTS, True)
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    model_id, version_id, input_root = self._request(d.request_id)
    graph: VersionGraph = self.graphs[keccak256(concat(model_id, version_id))]
    leaves: uint256 = graph.layer_count + 1
    self._require(len(layer_roots) == leaves * 32, "RootsMismatch")
    self._require(tensor_commit.tensor_root(layer_roots, leaves) == d.trace_root, "RootsMismatch")
    self._require(extract32(layer_roots, 0) == input_root, "InputRootMismatch")
    self._require(keccak256(output) == d.output_hash, "OutputMismatch")
    self._require(len(output) > 0 and len(output) % graph.output_rows == 0, "OutputMismatch")
    output_root: bytes32 = tensor_commit.tensor_root(output, graph.output_rows)
    self._require(output_root == extract32(layer_roots, graph.output_leaf * 32), "OutputMismatch")
    deadline: uint256 = self._next(dispute_id, Phase.LAYER)
    log RootsRevealed(dispute_id=dispute_id, layer_roots=layer_roots, deadline=deadline)


@external
def pick_layer(
    dispute_id: uint256,
    layer: uint256,
    layer_root: bytes32,
    root_siblings: DynArray[bytes32, MAX_DEPTH],
    spec: OneStepVerifier.LayerSpec,
    spec_siblings: DynArray[bytes32, MAX_DEPTH],
):
    """
    @notice Challenger: name the layer whose output it disputes (the first that differs from
            its own trace), with the layer's root under the trace root and its spec under the
            graph root.
    """
    d: Dispute = self._expect(dispute_id, Phase.LAYER, False)
    graph: VersionGraph = self._graph(d.request_id)
    leaves: uint256 = graph.layer_count + 1
    self._require(layer >= 1 and layer < leaves, "InvalidLayer")
    root_leaf: bytes32 = merkle.leaf_hash_bytes32(layer_root)
    self._require(merkle.verify_proof(d.trace_root, root_leaf, layer, leaves, root_siblings), "InvalidProof")
    spec_leaf: bytes32 = keccak256(concat(b"\x00", abi_encode(spec)))
    self._require(merkle.verify_proof(graph.graph_root, spec_leaf, layer, leaves, spec_siblings), "SpecMismatch")
    if not staticcall self.verifier.supported(spec):
        self._resolve(dispute_id, d, d.challenger, REASON_UNSUPPORTED_LAYER, layer, 0, 0, 0, 0)
        return
    rows: uint256 = spec.out_shape[0]
    row_length: uint256 = 1
    for i: uint256 in range(1, len(spec.out_shape), bound=4):
        row_length *= spec.out_shape[i]
    self.disputes[dispute_id].layer = layer
    self.disputes[dispute_id].spec_hash = spec_leaf
    self.disputes[dispute_id].rows = rows
    self.disputes[dispute_id].out_bytes = spec.out_bytes
    self.disputes[dispute_id].row_bytes = row_length * spec.out_bytes
    self.disputes[dispute_id].level = merkle.tree_depth(rows)
    self.disputes[dispute_id].node = layer_root
    self.disputes[dispute_id].at_root = True
    deadline: uint256 = self._next(dispute_id, Phase.REVEAL)
    log LayerPicked(dispute_id=dispute_id, layer=layer, rows=rows, deadline=deadline)


@external
def reveal_children(dispute_id: uint256, left: bytes32, right: bytes32):
    """
    @notice Provider: the two children of the current node (level >= 2) of the layer's row tree.
    """
    d: Dispute = self._expect(dispute_id, Phase.REVEAL, True)
    self._require(d.level >= 2, "WrongPhase")
    self._check_parent(d, merkle.node_hash(left, right))
    # A child that covers only padding must be the padding hash of its level.
    if ((2 * d.index + 1) << (d.level - 1)) >= d.rows:
        padding: bytes32 = empty(bytes32)
        for _: uint256 in range(d.level - 1, bound=64):
            padding = merkle.node_hash(padding, padding)
        self._require(right == padding, "ChildrenMismatch")
    self.disputes[dispute_id].left = left
    self.disputes[dispute_id].right = right
    deadline: uint256 = self._next(dispute_id, Phase.PICK)
    log ChildrenRevealed(
        dispute_id=dispute_id, level=d.level, index=d.index, left=left, right=right, deadline=deadline
    )


@external
def pick_child(dispute_id: uint256, right: bool):
    """
    @notice Challenger: descend into the left or the right child (one that covers real rows).
    """
    d: Dispute = self._expect(dispute_id, Phase.PICK, False)
    index: uint256 = 2 * d.index
    node: bytes32 = d.left
    if right:
        index += 1
        node = d.right
        self._require((index << (d.level - 1)) < d.rows, "PaddingChild")
    self.disputes[dispute_id].index = index
    self.disputes[dispute_id].level = d.level - 1
    self.disputes[dispute_id].node = node
    self.disputes[dispute_id].at_root = False
    deadline: uint256 = self._next(dispute_id, Phase.REVEAL)
    log ChildPicked(dispute_id=dispute_id, level=d.level - 1, index=index, deadline=deadline)


@external
def reveal_rows(dispute_id: uint256, rows: DynArray[Bytes[MAX_ROW_BYTES], 2]):
    """
    @notice Provider: the leaf rows under the current node (level 1: its two rows, or one when
            the right slot is padding; level 0, a one-row tensor: that row).
    """
    d: Dispute = self._expect(dispute_id, Phase.REVEAL, True)
    self._require(d.level <= 1, "WrongPhase")
    expected: uint256 = 1
    if d.level == 1 and 2 * d.index + 1 < d.rows:
        expected = 2
    self._require(len(rows) == expected, "ChildrenMismatch")
    for row: Bytes[MAX_ROW_BYTES] in rows:
        self._require(len(row) == d.row_bytes, "RowSizeMismatch")
    left: bytes32 = keccak256(concat(b"\x00", rows[0]))
    right: bytes32 = empty(bytes32)
    if expected == 2:
        right = keccak256(concat(b"\x00", rows[1]))
    if d.level == 0:
        self._check_parent(d, left)
    else:
        self._check_parent(d, merkle.node_hash(left, right))
    self.disputes[dispute_id].left = left
    self.disputes[dispute_id].right = right
    deadline: uint256 = self._next(dispute_id, Phase.STEP)
    log RowsRevealed(dispute_id=dispute_id, index=d.index, rows=rows, deadline=deadline)


@external
def one_step(
    dispute_id: uint256,
    right: bool,
    row: Bytes[MAX_ROW_BYTES],
    element: uint256,
    spec: OneStepVerifier.LayerSpec,
    inputs: DynArray[OneStepVerifier.InputRows, 2],
    tensors: DynArray[OneStepVerifier.TensorRows, 4],
):
    """
    @notice Challenger: name one element of a revealed row; the verifier recomputes it from the
            provider's committed inputs and the registered weights, and the dispute is decided.
    """
    d: Dispute = self._expect(dispute_id, Phase.STEP, False)
    leaf: bytes32 = keccak256(concat(b"\x00", row))
    row_index: uint256 = d.index
    if d.level == 1:
        row_index = 2 * d.index
        if right:
            row_index += 1
            self._require(leaf == d.right and d.right != empty(bytes32), "ChildrenMismatch")
        else:
            self._require(leaf == d.left, "ChildrenMismatch")
    else:
        self._require(not right and leaf == d.left, "ChildrenMismatch")
    self._require(keccak256(concat(b"\x00", abi_encode(spec))) == d.spec_hash, "SpecMismatch")
    self._require(element < d.row_bytes // d.out_bytes, "InvalidElement")
    committed: int256 = 0
    if d.out_bytes == 1:
        committed = convert(convert(slice(row, element, 1), bytes1), int256)
    else:
        committed = convert(convert(slice(row, element * 4, 4), bytes4), int256)
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    model_id, version_id, input_root = self._request(d.request_id)
    graph: VersionGraph = self.graphs[keccak256(concat(model_id, version_id))]
    context: OneStepVerifier.StepContext = OneStepVerifier.StepContext(
        trace_root=d.trace_root,
        trace_leaves=graph.layer_count + 1,
        weights_root=staticcall registry.weights_root(model_id, version_id),
        tensor_count=graph.tensor_count,
    )
    supported: bool = False
    correct: int256 = 0
    supported, correct = staticcall self.verifier.recompute(context, spec, row_index, element, inputs, tensors)
    if not supported:
        self._resolve(
            dispute_id, d, d.challenger, REASON_UNSUPPORTED_LAYER, d.layer, row_index, element, committed, 0
        )
    elif correct != committed:
        self._resolve(dispute_id, d, d.challenger, REASON_ONE_STEP, d.layer, row_index, element, committed, correct)
    else:
        self._resolve(dispute_id, d, d.provider, REASON_ONE_STEP, d.layer, row_index, element, committed, correct)


@external
def timeout(dispute_id: uint256):
    """
    @notice Anyone: the party to move missed its deadline and loses (a dispute on a request
            another dispute already overturned is cancelled instead).
    """
    d: Dispute = self.disputes[dispute_id]
    self._require(d.phase in (Phase.ROOTS | Phase.LAYER | Phase.REVEAL | Phase.PICK | Phase.STEP), "UnknownDispute")
    if self._status(d.request_id) == OVERTURNED:
        self._cancel(dispute_id, d)
        return
    self._require(block.timestamp > d.deadline, "DeadlineNotReached")
    winner: address = d.provider
    if d.phase in (Phase.ROOTS | Phase.REVEAL):
        winner = d.challenger
    self._resolve(dispute_id, d, winner, REASON_TIMEOUT, d.layer, 0, 0, 0, 0)


@external
def cancel_dispute(dispute_id: uint256):
    """
    @notice Anyone: close a dispute whose request another dispute overturned; the bond returns.
    """
    d: Dispute = self.disputes[dispute_id]
    self._require(d.phase in (Phase.ROOTS | Phase.LAYER | Phase.REVEAL | Phase.PICK | Phase.STEP), "UnknownDispute")
    self._require(self._status(d.request_id) == OVERTURNED, "RequestNotOverturned")
    self._cancel(dispute_id, d)


# ---------------------------------------------------------------------------------------------
# Internals.
# ---------------------------------------------------------------------------------------------


@internal
@view
def _move_period() -> uint256:
    return (staticcall market.params()).move_period


@internal
@view
def _request(request_id: uint256) -> (bytes32, bytes32, bytes32):
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    status: uint256 = 0
    mode: uint256 = 0
    deadline: uint256 = 0
    model_id, version_id, input_root, status, mode, deadline = staticcall market.request_terms(request_id)
    return model_id, version_id, input_root


@internal
@view
def _status(request_id: uint256) -> uint256:
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    status: uint256 = 0
    mode: uint256 = 0
    deadline: uint256 = 0
    model_id, version_id, input_root, status, mode, deadline = staticcall market.request_terms(request_id)
    return status


@internal
@view
def _graph(request_id: uint256) -> VersionGraph:
    model_id: bytes32 = empty(bytes32)
    version_id: bytes32 = empty(bytes32)
    input_root: bytes32 = empty(bytes32)
    model_id, version_id, input_root = self._request(request_id)
    return self.graphs[keccak256(concat(model_id, version_id))]


@internal
@pure
def _size(shape: DynArray[uint256, 4]) -> uint256:
    size: uint256 = 1
    for d: uint256 in shape:
        self._require(d > 0 and d <= 2**32, "InvalidGraph")
        size *= d
    return size


@internal
@view
def _expect(dispute_id: uint256, phase: Phase, provider_moves: bool) -> Dispute:
    """
    @dev The dispute is in `phase`, the caller is the party to move, its deadline has not
         passed, and the request still stands.
    """
    d: Dispute = self.disputes[dispute_id]
    self._require(d.request_id != 0, "UnknownDispute")
    self._require(d.phase == phase, "WrongPhase")
    if provider_moves:
        self._require(msg.sender == d.provider, "NotProvider")
    else:
        self._require(msg.sender == d.challenger, "NotChallenger")
    self._require(block.timestamp <= d.deadline, "MoveTooLate")
    self._require(self._status(d.request_id) != OVERTURNED, "RequestOverturned")
    return d


@internal
def _next(dispute_id: uint256, phase: Phase) -> uint256:
    deadline: uint256 = block.timestamp + self._move_period()
    self.disputes[dispute_id].phase = phase
    self.disputes[dispute_id].deadline = deadline
    return deadline


@internal
@pure
def _check_parent(d: Dispute, parent: bytes32):
    """
    @dev `parent` (the hash of revealed children) must be the current node; at the top of the
         row tree the node is the tensor root, which binds the row count as well.
    """
    if d.at_root:
        self._require(merkle.root_from_inner(d.rows, parent) == d.node, "ChildrenMismatch")
    else:
        self._require(parent == d.node, "ChildrenMismatch")


@internal
def _resolve(
    dispute_id: uint256,
    d: Dispute,
    winner: address,
    reason: uint256,
    layer: uint256,
    row: uint256,
    element: uint256,
    committed: int256,
    correct: int256,
):
    """
    @dev End the game (effects and log first), then let the market settle the money.
    """
    outcome: uint256 = PROVIDER_WON
    phase: Phase = Phase.PROVIDER_WON
    if winner == d.challenger:
        outcome = CHALLENGER_WON
        phase = Phase.CHALLENGER_WON
    self.disputes[dispute_id].phase = phase
    log DisputeResolved(
        dispute_id=dispute_id,
        request_id=d.request_id,
        winner=winner,
        reason=reason,
        layer=layer,
        row=row,
        element=element,
        committed=committed,
        correct=correct,
    )
    extcall market.close_dispute(d.request_id, d.challenger, d.bond, outcome)


@internal
def _cancel(dispute_id: uint256, d: Dispute):
    self.disputes[dispute_id].phase = Phase.CANCELLED
    log DisputeCancelled(dispute_id=dispute_id, request_id=d.request_id)
    extcall market.close_dispute(d.request_id, d.challenger, d.bond, CANCELLED)


@internal
@pure
def _require(ok: bool, reason: String[32]):
    """
    @dev `assert ok, reason` with one shared Error(string) encoder (EIP-170).
    """
    if not ok:
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
