# pragma version ~=0.4.3
"""
@title ModelRegistry: models, their maintainers and their immutable versions
@notice The public record of every aicommons model. A model is a unique slug with a set of
        maintainers; a version is immutable once published and binds a version id (keccak-256
        of the canonical manifest) to its weights root, storage locators, SPDX licence,
        attribution shares, verification modes and inference fee. Executors and markets read
        the fee and attribution from here, so the people who made a model are paid by the
        chain itself. Governance (the deployer at first, the timelock later) alone chooses the
        canonical version of a model; maintainers or governance may deprecate a version.
@dev Reverts use short named reasons (see docs/contracts.md): NotGovernance, NotMaintainer,
     InvalidSlug, ModelExists, UnknownModel, TooManyMaintainers, AlreadyMaintainer,
     LastMaintainer, InvalidVersionId, InvalidWeightsRoot, VersionExists, UnknownVersion,
     InvalidLicence, InvalidLocator, InvalidAttribution, InvalidRole, SharesExceedTotal,
     InvalidModes, InvalidFee, VersionDeprecated, VersionIsCanonical, WrongModel, ZeroAddress.
"""

from snekmate.auth import ownable

initializes: ownable

exports: ownable.owner

MAX_MAINTAINERS: constant(uint256) = 16
MAX_LOCATORS: constant(uint256) = 8
MAX_ATTRIBUTION: constant(uint256) = 16
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


struct Attribution:
    account: address
    role: uint8
    share_bps: uint16


struct Version:
    model_id: bytes32
    weights_root: bytes32
    fee: uint256
    modes: uint256
    licence: String[64]
    locators: DynArray[String[256], MAX_LOCATORS]
    attribution: DynArray[Attribution, MAX_ATTRIBUTION]
    publisher: address
    published_at: uint256
    deprecated: bool


struct Model:
    slug: String[64]
    maintainer_count: uint256
    version_count: uint256
    canonical: bytes32


event ModelRegistered:
    model_id: indexed(bytes32)
    slug: String[64]
    registrant: indexed(address)


event MaintainerAdded:
    model_id: indexed(bytes32)
    account: indexed(address)
    by: address


event MaintainerRemoved:
    model_id: indexed(bytes32)
    account: indexed(address)
    by: address


event VersionPublished:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    weights_root: bytes32
    fee: uint256
    modes: uint256
    licence: String[64]
    attribution: DynArray[Attribution, MAX_ATTRIBUTION]
    locators: DynArray[String[256], MAX_LOCATORS]


event CanonicalSet:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)


event VersionDeprecated:
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    by: address


models: public(HashMap[bytes32, Model])
# fee << 2 | deprecated << 1 | exists: what an executor reads on every call, in one slot.
_terms: HashMap[bytes32, uint256]
versions: public(HashMap[bytes32, Version])
is_maintainer: public(HashMap[bytes32, HashMap[address, bool]])


@deploy
def __init__():
    """
    @notice The deployer is governance until it hands over with `transfer_ownership`.
    """
    ownable.__init__()


@external
def transfer_governance(new_governance: address):
    """
    @notice Hand the governance role (canonical versions) to a new address, e.g. the timelock.
    """
    self._check_governance()
    assert new_governance != empty(address), "ZeroAddress"
    ownable._transfer_ownership(new_governance)


@external
@view
def governance() -> address:
    return ownable.owner


@external
def register_model(slug: String[64], maintainers: DynArray[address, MAX_MAINTAINERS]) -> bytes32:
    """
    @notice Register a model under a unique slug; the caller and `maintainers` maintain it.
    @dev Slugs are 3-64 characters of [a-z0-9-], starting and ending alphanumeric, with no
         double hyphen, so they are safe in URLs and file names and have one spelling.
    @return model_id keccak256(slug)
    """
    assert self._valid_slug(slug), "InvalidSlug"
    model_id: bytes32 = keccak256(slug)
    assert self.models[model_id].maintainer_count == 0, "ModelExists"
    self.models[model_id].slug = slug
    log ModelRegistered(model_id=model_id, slug=slug, registrant=msg.sender)
    self._add_maintainer(model_id, msg.sender)
    for account: address in maintainers:
        if not self.is_maintainer[model_id][account]:
            self._add_maintainer(model_id, account)
    return model_id


@external
def add_maintainer(model_id: bytes32, account: address):
    self._check_maintainer(model_id)
    assert not self.is_maintainer[model_id][account], "AlreadyMaintainer"
    self._add_maintainer(model_id, account)


@external
def remove_maintainer(model_id: bytes32, account: address):
    """
    @notice Remove a maintainer (also oneself); a model always keeps at least one.
    """
    self._check_maintainer(model_id)
    assert self.is_maintainer[model_id][account], "NotMaintainer"
    assert self.models[model_id].maintainer_count > 1, "LastMaintainer"
    self.is_maintainer[model_id][account] = False
    self.models[model_id].maintainer_count -= 1
    log MaintainerRemoved(model_id=model_id, account=account, by=msg.sender)


@external
def publish_version(
    model_id: bytes32,
    version_id: bytes32,
    weights_root: bytes32,
    locators: DynArray[String[256], MAX_LOCATORS],
    licence: String[64],
    attribution: DynArray[Attribution, MAX_ATTRIBUTION],
    modes: uint256,
    fee: uint256,
):
    """
    @notice Publish an immutable version of a model (maintainers only).
    @param version_id keccak-256 of the canonical manifest (commits to graph and every tensor).
    @param weights_root Merkle root of the tensor roots ordered by tensor name.
    @param locators Where the package can be fetched (CIDs or URIs), at least one.
    @param licence SPDX licence id or expression, e.g. "Apache-2.0", "MIT OR CC-BY-4.0".
    @param attribution Who is paid from each fee: (account, role, share in basis points);
           shares sum to at most 10000, the rest goes to the protocol treasury.
    @param modes Bit set of verification modes (1 on-chain exact, 2 redundant, 4 optimistic).
    @param fee Inference fee in CommonsToken units.
    """
    self._check_maintainer(model_id)
    assert version_id != empty(bytes32), "InvalidVersionId"
    assert weights_root != empty(bytes32), "InvalidWeightsRoot"
    assert self.versions[version_id].model_id == empty(bytes32), "VersionExists"
    assert self._valid_licence(licence), "InvalidLicence"
    assert len(locators) > 0, "InvalidLocator"
    for locator: String[256] in locators:
        assert len(locator) > 0, "InvalidLocator"
    total_bps: uint256 = 0
    for entry: Attribution in attribution:
        assert entry.account != empty(address), "InvalidAttribution"
        assert entry.role >= ROLE_AUTHOR and entry.role <= ROLE_STORAGE_PROVIDER, "InvalidRole"
        total_bps += convert(entry.share_bps, uint256)
    assert total_bps <= BPS, "SharesExceedTotal"
    assert modes != 0 and modes & ~ALL_MODES == 0, "InvalidModes"
    assert fee < 2**254, "InvalidFee"

    self.versions[version_id] = Version(
        model_id=model_id,
        weights_root=weights_root,
        fee=fee,
        modes=modes,
        licence=licence,
        locators=locators,
        attribution=attribution,
        publisher=msg.sender,
        published_at=block.timestamp,
        deprecated=False,
    )
    self.models[model_id].version_count += 1
    self._terms[version_id] = fee << 2 | 1
    log VersionPublished(
        model_id=model_id,
        version_id=version_id,
        weights_root=weights_root,
        fee=fee,
        modes=modes,
        licence=licence,
        attribution=attribution,
        locators=locators,
    )


@external
def set_canonical(model_id: bytes32, version_id: bytes32):
    """
    @notice Governance names the version users get by default; it must be live and the model's.
    """
    self._check_governance()
    assert self.models[model_id].maintainer_count > 0, "UnknownModel"
    version_model: bytes32 = self.versions[version_id].model_id
    assert version_model != empty(bytes32), "UnknownVersion"
    assert version_model == model_id, "WrongModel"
    assert not self.versions[version_id].deprecated, "VersionDeprecated"
    self.models[model_id].canonical = version_id
    log CanonicalSet(model_id=model_id, version_id=version_id)


@external
def deprecate_version(version_id: bytes32):
    """
    @notice Stop a version being used for new inferences (maintainers or governance).
    @dev The canonical version cannot be deprecated: governance first moves canonical elsewhere,
         so "the canonical version" always names a usable one.
    """
    model_id: bytes32 = self.versions[version_id].model_id
    assert model_id != empty(bytes32), "UnknownVersion"
    assert self.is_maintainer[model_id][msg.sender] or msg.sender == ownable.owner, "NotMaintainer"
    assert not self.versions[version_id].deprecated, "VersionDeprecated"
    assert self.models[model_id].canonical != version_id, "VersionIsCanonical"
    self.versions[version_id].deprecated = True
    self._terms[version_id] = self._terms[version_id] | 2
    log VersionDeprecated(model_id=model_id, version_id=version_id, by=msg.sender)


@external
@view
def canonical(model_id: bytes32) -> bytes32:
    return self.models[model_id].canonical


@external
@view
def inference_terms(version_id: bytes32) -> (bool, bool, uint256):
    """
    @notice What an executor needs per call: (exists, deprecated, fee).
    """
    terms: uint256 = self._terms[version_id]
    return terms & 1 == 1, terms & 2 == 2, terms >> 2


@external
@view
def attribution(version_id: bytes32) -> DynArray[Attribution, MAX_ATTRIBUTION]:
    return self.versions[version_id].attribution


@external
@view
def weights_root(version_id: bytes32) -> bytes32:
    return self.versions[version_id].weights_root


@external
@view
def can_maintain_version(version_id: bytes32, account: address) -> bool:
    """
    @notice True iff `account` maintains the model `version_id` belongs to.
    """
    model_id: bytes32 = self.versions[version_id].model_id
    return model_id != empty(bytes32) and self.is_maintainer[model_id][account]


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
