# pragma version ~=0.4.3
"""
@title ModelRegistry: models, their owners and maintainers, and their immutable versions
@notice The public record of every aicommons model. A model is a unique slug with an owner (its
        registrant) and a set of maintainers; a version is immutable once published and binds,
        under its model, a version id (keccak-256 of the canonical manifest) to its weights
        root, its program hash (what the on-chain executor may run), storage locators, SPDX
        licence, attribution shares, verification modes and inference fee. Executors and
        markets read the fee and attribution from here, so the people who made a model are paid
        by the chain itself. Governance (the deployer at first, the timelock later) alone
        chooses the canonical version of a model; maintainers or governance may deprecate one.
@dev Versions are keyed by (model_id, version_id): the same content may be published under two
     models (a fork), but only a model's maintainers can publish under it, so nobody can take
     or block an author's version id under the author's model.
     Invariants:
     - a model's owner is always one of its maintainers; only the owner adds or removes
       maintainers, nobody removes the owner, and the owner leaves only by handing over;
     - a published version never changes except `deprecated`, which goes false -> true once,
       never for the canonical version; `_terms` mirrors (exists, deprecated, fee);
     - program_hash != 0 exactly when the version's modes include on-chain exact;
     - graph_root != 0 only when the modes include redundant or optimistic: it is the market's
       graph commitment of the package (aicommons.market.graph_commitment), the one source the
       DisputeGame proves its header and layer specs against.
     Reverts use named reasons, each listed in docs/contracts.md.
"""

from snekmate.auth import ownable

import fee_split

initializes: ownable

exports: ownable.owner

MAX_MAINTAINERS: constant(uint256) = 16
MAX_LOCATORS: constant(uint256) = 8
BPS: constant(uint256) = 10_000

# Attribution roles. Numbers, not strings, so the fee split reads them cheaply.
ROLE_AUTHOR: constant(uint8) = 1
ROLE_DATA_PROVIDER: constant(uint8) = 2
ROLE_MAINTAINER: constant(uint8) = 3
ROLE_COMPUTE_PROVIDER: constant(uint8) = 4
ROLE_STORAGE_PROVIDER: constant(uint8) = 5

# Verification modes, a bit set: 1 on-chain exact, 2 redundant, 4 optimistic with dispute.
MODE_ONCHAIN_EXACT: constant(uint256) = 1
MODE_REDUNDANT: constant(uint256) = 2
MODE_OPTIMISTIC: constant(uint256) = 4
ALL_MODES: constant(uint256) = 7


struct Version:
    weights_root: bytes32
    # keccak256 of the executor program (chain.executor.program_hash); zero without mode 1.
    program_hash: bytes32
    fee: uint256
    modes: uint256
    licence: String[64]
    locators: DynArray[String[256], MAX_LOCATORS]
    attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION]
    publisher: address
    published_at: uint256
    deprecated: bool
    # Merkle root of the market's graph commitment (docs/market.md); zero without mode 2 or 4.
    graph_root: bytes32


struct Model:
    slug: String[64]
    owner: address
    maintainer_count: uint256
    version_count: uint256
    canonical: bytes32


event ModelRegistered:
    model_id: indexed(bytes32)
    owner: indexed(address)
    slug: String[64]


event ModelOwnerChanged:
    model_id: indexed(bytes32)
    previous_owner: indexed(address)
    new_owner: indexed(address)


event MaintainerAdded:
    model_id: indexed(bytes32)
    account: indexed(address)
    by: indexed(address)


event MaintainerRemoved:
    model_id: indexed(bytes32)
    account: indexed(address)
    by: indexed(address)


event VersionPublished:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    publisher: indexed(address)
    weights_root: bytes32
    program_hash: bytes32
    fee: uint256
    modes: uint256
    licence: String[64]
    attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION]
    locators: DynArray[String[256], MAX_LOCATORS]
    graph_root: bytes32


event CanonicalSet:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)


event VersionDeprecated:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    by: indexed(address)


models: public(HashMap[bytes32, Model])
# fee << 2 | deprecated << 1 | exists: what an executor reads on every call, in one slot.
_terms: HashMap[bytes32, HashMap[bytes32, uint256]]
versions: public(HashMap[bytes32, HashMap[bytes32, Version]])
is_maintainer: public(HashMap[bytes32, HashMap[address, bool]])


@deploy
def __init__():
    """
    @notice The deployer is governance until it hands over with `transfer_governance`.
    """
    ownable.__init__()


@external
def register_model(slug: String[64], maintainers: DynArray[address, MAX_MAINTAINERS]) -> bytes32:
    """
    @notice Register a model under a unique slug. The caller becomes its owner; the caller and
            `maintainers` maintain it.
    @dev Slugs are 3-64 characters of [a-z0-9-], starting and ending alphanumeric, with no
         double hyphen, so they are safe in URLs and file names and have one spelling.
    @param slug The model's name.
    @param maintainers Further maintainers (duplicates and the caller are skipped).
    @return model_id keccak256(slug)
    """
    assert self._valid_slug(slug), "InvalidSlug"
    model_id: bytes32 = keccak256(slug)
    assert self.models[model_id].maintainer_count == 0, "ModelExists"
    self.models[model_id].slug = slug
    self.models[model_id].owner = msg.sender
    log ModelRegistered(model_id=model_id, owner=msg.sender, slug=slug)
    self._add_maintainer(model_id, msg.sender)
    for account: address in maintainers:
        if not self.is_maintainer[model_id][account]:
            self._add_maintainer(model_id, account)
    return model_id


@external
def transfer_model_ownership(model_id: bytes32, new_owner: address):
    """
    @notice The owner hands the model to `new_owner`, who becomes a maintainer if not one yet.
            The previous owner stays a maintainer (and may then be removed).
    @param model_id The model.
    @param new_owner The next owner; not the zero address.
    """
    self._check_owner(model_id)
    assert new_owner != empty(address), "ZeroAddress"
    if not self.is_maintainer[model_id][new_owner]:
        self._add_maintainer(model_id, new_owner)
    self.models[model_id].owner = new_owner
    log ModelOwnerChanged(model_id=model_id, previous_owner=msg.sender, new_owner=new_owner)


@external
def add_maintainer(model_id: bytes32, account: address):
    """
    @notice The model's owner adds a maintainer (at most 16).
    @param model_id The model.
    @param account The new maintainer; not the zero address, not already one.
    """
    self._check_owner(model_id)
    assert not self.is_maintainer[model_id][account], "AlreadyMaintainer"
    self._add_maintainer(model_id, account)


@external
def remove_maintainer(model_id: bytes32, account: address):
    """
    @notice The owner removes a maintainer, or a maintainer removes itself. Nobody removes the
            owner (it hands over with `transfer_model_ownership` first), so a model always keeps
            its owner among its maintainers.
    @param model_id The model.
    @param account The maintainer to remove.
    """
    if msg.sender != account:
        self._check_owner(model_id)
    assert self.is_maintainer[model_id][account], "UnknownMaintainer"
    assert account != self.models[model_id].owner, "CannotRemoveOwner"
    self.is_maintainer[model_id][account] = False
    self.models[model_id].maintainer_count -= 1
    log MaintainerRemoved(model_id=model_id, account=account, by=msg.sender)


@external
def publish_version(
    model_id: bytes32,
    version_id: bytes32,
    weights_root: bytes32,
    program_hash: bytes32,
    locators: DynArray[String[256], MAX_LOCATORS],
    licence: String[64],
    attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION],
    modes: uint256,
    fee: uint256,
    graph_root: bytes32 = empty(bytes32),
):
    """
    @notice Publish an immutable version of a model (its maintainers only).
    @param model_id The model the version belongs to.
    @param version_id keccak-256 of the canonical manifest (commits to graph and every tensor).
    @param weights_root Merkle root of the tensor roots ordered by tensor name.
    @param program_hash `chain.executor.program_hash` of the package when `modes` includes
           on-chain exact (the only program the executor will accept for it), else zero.
    @param locators Where the package can be fetched (CIDs or URIs), at least one.
    @param licence SPDX licence id or expression, e.g. "Apache-2.0", "MIT OR CC-BY-4.0".
    @param attribution Who is paid from each fee: (account, role, share in basis points);
           shares sum to at most 10000, the rest goes to the protocol treasury.
    @param modes Bit set of verification modes (1 on-chain exact, 2 redundant, 4 optimistic).
    @param fee Inference fee in CommonsToken units, at most fee_split.MAX_FEE.
    @param graph_root The market's graph commitment of the package (`market.graph_commitment`),
           for a version the compute market serves (modes 2 or 4); zero otherwise, or for a
           version the market cannot check (then it is not servable there).
    """
    self._check_maintainer(model_id)
    assert version_id != empty(bytes32), "InvalidVersionId"
    assert weights_root != empty(bytes32), "InvalidWeightsRoot"
    assert self._terms[model_id][version_id] == 0, "VersionExists"
    assert modes != 0 and modes & ~ALL_MODES == 0, "InvalidModes"
    assert (modes & MODE_ONCHAIN_EXACT != 0) == (program_hash != empty(bytes32)), "InvalidProgramHash"
    assert graph_root == empty(bytes32) or modes & (MODE_REDUNDANT | MODE_OPTIMISTIC) != 0, "InvalidGraphRoot"
    assert self._valid_licence(licence), "InvalidLicence"
    assert len(locators) > 0, "InvalidLocator"
    for locator: String[256] in locators:
        assert len(locator) > 0, "InvalidLocator"
    total_bps: uint256 = 0
    for entry: fee_split.Attribution in attribution:
        assert entry.account != empty(address), "InvalidAttribution"
        assert entry.role >= ROLE_AUTHOR and entry.role <= ROLE_STORAGE_PROVIDER, "InvalidRole"
        total_bps += convert(entry.share_bps, uint256)
    assert total_bps <= BPS, "SharesExceedTotal"
    assert fee <= fee_split.MAX_FEE, "InvalidFee"

    self.versions[model_id][version_id] = Version(
        weights_root=weights_root,
        program_hash=program_hash,
        fee=fee,
        modes=modes,
        licence=licence,
        locators=locators,
        attribution=attribution,
        publisher=msg.sender,
        published_at=block.timestamp,
        deprecated=False,
        graph_root=graph_root,
    )
    self.models[model_id].version_count += 1
    self._terms[model_id][version_id] = fee << 2 | 1
    log VersionPublished(
        model_id=model_id,
        version_id=version_id,
        publisher=msg.sender,
        weights_root=weights_root,
        program_hash=program_hash,
        fee=fee,
        modes=modes,
        licence=licence,
        attribution=attribution,
        locators=locators,
        graph_root=graph_root,
    )


@external
def set_canonical(model_id: bytes32, version_id: bytes32):
    """
    @notice Governance names the version users get by default; it must be a live version of
            the model.
    @param model_id The model.
    @param version_id One of its published, not deprecated versions.
    """
    self._check_governance()
    assert self.models[model_id].maintainer_count > 0, "UnknownModel"
    terms: uint256 = self._terms[model_id][version_id]
    assert terms & 1 == 1, "UnknownVersion"
    assert terms & 2 == 0, "VersionDeprecated"
    self.models[model_id].canonical = version_id
    log CanonicalSet(model_id=model_id, version_id=version_id)


@external
def deprecate_version(model_id: bytes32, version_id: bytes32):
    """
    @notice Stop a version being used for new inferences (maintainers or governance).
    @dev The canonical version cannot be deprecated: governance first moves canonical elsewhere,
         so "the canonical version" always names a usable one.
    @param model_id The model.
    @param version_id The version to deprecate.
    """
    terms: uint256 = self._terms[model_id][version_id]
    assert terms & 1 == 1, "UnknownVersion"
    assert self.is_maintainer[model_id][msg.sender] or msg.sender == ownable.owner, "NotMaintainer"
    assert terms & 2 == 0, "VersionDeprecated"
    assert self.models[model_id].canonical != version_id, "VersionIsCanonical"
    self.versions[model_id][version_id].deprecated = True
    self._terms[model_id][version_id] = terms | 2
    log VersionDeprecated(model_id=model_id, version_id=version_id, by=msg.sender)


@external
def transfer_governance(new_governance: address):
    """
    @notice Hand the governance role (canonical versions) to a new address, e.g. the timelock.
    @param new_governance The next governance; not the zero address.
    """
    self._check_governance()
    assert new_governance != empty(address), "ZeroAddress"
    ownable._transfer_ownership(new_governance)


@external
@view
def governance() -> address:
    """
    @return The account that sets canonical versions (snekmate ownable's owner).
    """
    return ownable.owner


@external
@view
def model_owner(model_id: bytes32) -> address:
    """
    @return The model's owner (its registrant until handed over); zero for an unknown model.
    """
    return self.models[model_id].owner


@external
@view
def canonical(model_id: bytes32) -> bytes32:
    """
    @return The model's canonical version id, zero if governance named none.
    """
    return self.models[model_id].canonical


@external
@view
def inference_terms(model_id: bytes32, version_id: bytes32) -> (bool, bool, uint256):
    """
    @notice What an executor needs per call, from one storage slot.
    @return (exists, deprecated, fee) of the version.
    """
    terms: uint256 = self._terms[model_id][version_id]
    return terms & 1 == 1, terms & 2 == 2, terms >> 2


@external
@view
def attribution(
    model_id: bytes32, version_id: bytes32
) -> DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION]:
    """
    @return The version's attribution list (account, role, share_bps), as published.
    """
    return self.versions[model_id][version_id].attribution


@external
@view
def weights_root(model_id: bytes32, version_id: bytes32) -> bytes32:
    """
    @return The version's weights root (zero for an unknown version).
    """
    return self.versions[model_id][version_id].weights_root


@external
@view
def program_hash(model_id: bytes32, version_id: bytes32) -> bytes32:
    """
    @return The program the executor may run for the version (zero: not on-chain).
    """
    return self.versions[model_id][version_id].program_hash


@external
@view
def graph_root(model_id: bytes32, version_id: bytes32) -> bytes32:
    """
    @return The version's market graph commitment (zero: none, so not servable by the market).
    """
    return self.versions[model_id][version_id].graph_root


@external
@view
def modes(model_id: bytes32, version_id: bytes32) -> uint256:
    """
    @return The version's verification modes bit set (1 on-chain, 2 redundant, 4 optimistic;
            zero for an unknown version).
    """
    return self.versions[model_id][version_id].modes


@external
@view
def publisher(model_id: bytes32, version_id: bytes32) -> address:
    """
    @return The account that published the version (zero for an unknown version).
    """
    return self.versions[model_id][version_id].publisher


@internal
def _add_maintainer(model_id: bytes32, account: address):
    assert account != empty(address), "ZeroAddress"
    assert self.models[model_id].maintainer_count < MAX_MAINTAINERS, "TooManyMaintainers"
    self.is_maintainer[model_id][account] = True
    self.models[model_id].maintainer_count += 1
    log MaintainerAdded(model_id=model_id, account=account, by=msg.sender)


@internal
@view
def _check_maintainer(model_id: bytes32):
    assert self.models[model_id].maintainer_count > 0, "UnknownModel"
    assert self.is_maintainer[model_id][msg.sender], "NotMaintainer"


@internal
@view
def _check_owner(model_id: bytes32):
    assert self.models[model_id].maintainer_count > 0, "UnknownModel"
    assert self.models[model_id].owner == msg.sender, "NotModelOwner"


@internal
@view
def _check_governance():
    assert msg.sender == ownable.owner, "NotGovernance"


@internal
@pure
def _valid_slug(slug: String[64]) -> bool:
    length: uint256 = len(slug)
    if length < 3:
        return False
    raw: Bytes[64] = convert(slug, Bytes[64])
    previous_hyphen: bool = True  # a leading hyphen counts as "after a hyphen"
    for i: uint256 in range(length, bound=64):
        char: uint256 = convert(slice(raw, i, 1), uint256)
        is_alnum: bool = (char >= 97 and char <= 122) or (char >= 48 and char <= 57)
        if char == 45:
            if previous_hyphen:
                return False
            previous_hyphen = True
        elif is_alnum:
            previous_hyphen = False
        else:
            return False
    return not previous_hyphen


@internal
@pure
def _valid_licence(licence: String[64]) -> bool:
    """
    @dev SPDX ids and expressions use letters, digits, '.', '-', '+', spaces and parentheses
         ("MIT", "Apache-2.0", "GPL-3.0-or-later", "MIT OR Apache-2.0"); nothing else.
    """
    length: uint256 = len(licence)
    if length == 0:
        return False
    raw: Bytes[64] = convert(licence, Bytes[64])
    for i: uint256 in range(length, bound=64):
        char: uint256 = convert(slice(raw, i, 1), uint256)
        ok: bool = (
            (char >= 97 and char <= 122)
            or (char >= 65 and char <= 90)
            or (char >= 48 and char <= 57)
            or char == 46
            or char == 45
            or char == 43
            or char == 32
            or char == 40
            or char == 41
        )
        if not ok:
            return False
    first: uint256 = convert(slice(raw, 0, 1), uint256)
    last: uint256 = convert(slice(raw, length - 1, 1), uint256)
    return first != 32 and last != 32
