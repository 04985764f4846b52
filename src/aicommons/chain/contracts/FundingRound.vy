# pragma version ~=0.4.3
"""
@title FundingRound: quadratic-funding rounds for models, matched exactly and on-chain
@notice Anyone opens a round by depositing a matching pool (the treasury does it by proposal),
        with a start, an end, an optional cap per model (basis points of the pool) and an
        optional eligibility contract (`is_eligible(contributor) -> bool`, e.g. an allowlist
        or a passport-score gate). While the round runs anyone contributes AIC to a registered
        model. After the end anyone calls `finalise`, which computes every model's match with
        the `quadratic_funding` formula; the rest of the pool is credited back to the funder.
        Then `claim(round, model)` credits the model's contributions and match to the
        attribution list of the model's canonical version, in the same split as an inference
        fee (without the protocol share), and each account takes its money out with `withdraw`.
@dev Why the canonical version: only governance names it, so a maintainer cannot redirect a
     round's money by publishing a new version with a new attribution list. A model without a
     canonical version can be funded, but its claim waits (NoCanonicalVersion) until there is
     one.
     Eligibility is asked at each contribution: what a contributor gives while eligible counts
     in S_p and C_p; what it gives while not eligible reaches the model but earns no match.
     The eligibility contract is called with a gas limit and as a static call; a revert or a
     malformed answer counts as "not eligible".
     Storage per (round, model): S_p | C_p in one word and total | match in another, kept
     incrementally as contributions arrive, so finalise reads two words and writes one per
     model: O(models), not O(contributions).
     Invariants (tested on random rounds against aicommons.governance.qf):
     - for an unfinalised round: the pool and every contribution are held here;
     - after finalise: sum of matches + credit to the funder == pool;
     - token.balanceOf(self) >= payouts.total_owed + pools of unfinalised rounds + totals and
       matches of unclaimed projects (equality when nobody sends tokens here directly);
     - S_p == sum over contributors of isqrt(eligible part), C_p == sum of eligible parts.
     Reverts: ZeroAddress, ZeroPool, InvalidPeriod, InvalidCap, UnknownRound, RoundNotStarted,
     RoundEnded, ZeroAmount, AmountTooLarge, UnknownModel, RoundFull, RoundNotEnded, AlreadyFinalised,
     RoundNotFinalised, UnknownProject, AlreadyClaimed, NoCanonicalVersion, TransferFailed,
     NothingToWithdraw.
"""

from ethereum.ercs import IERC20

import fee_split
import payouts
import quadratic_funding

initializes: payouts

exports: (payouts.token, payouts.owed, payouts.total_owed, payouts.withdraw)


interface IModelRegistry:
    def model_owner(model_id: bytes32) -> address: view
    def canonical(model_id: bytes32) -> bytes32: view
    def attribution(model_id: bytes32, version_id: bytes32) -> DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION]: view


MAX_PROJECTS: constant(uint256) = quadratic_funding.MAX_PROJECTS
BPS: constant(uint256) = 10_000
# Enough for an allowlist lookup or a score comparison; an eligibility check never gets more.
ELIGIBILITY_GAS: constant(uint256) = 100_000
_LOW: constant(uint256) = (1 << 128) - 1
# Pools and contributions stay below this so that S_p, C_p, totals and matches pack in 128 bits.
MAX_AMOUNT: constant(uint256) = 1 << 127


struct Round:
    funder: address
    pool: uint256
    start: uint256
    end: uint256
    cap_bps: uint256
    eligibility: address
    project_count: uint256
    finalised: bool


registry: public(immutable(IModelRegistry))
treasury: public(immutable(address))

round_count: public(uint256)
rounds: public(HashMap[uint256, Round])
# round -> position (1-based) of a model among the round's projects; 0: not funded yet
_position: HashMap[uint256, HashMap[bytes32, uint256]]
# round -> position -> model id
_models: HashMap[uint256, HashMap[uint256, bytes32]]
# round -> position -> S_p << 128 | C_p
_sums: HashMap[uint256, HashMap[uint256, uint256]]
# round -> position -> total << 128 | match
_amounts: HashMap[uint256, HashMap[uint256, uint256]]
# round -> position -> number of distinct contributors, and whether the project was claimed
_contributors: HashMap[uint256, HashMap[uint256, uint256]]
_claimed: HashMap[uint256, HashMap[uint256, bool]]
# round -> position -> contributor -> eligible part << 128 | total given
_given: HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]]


event RoundOpened:
    round_id: indexed(uint256)
    funder: indexed(address)
    pool: uint256
    start: uint256
    end: uint256
    cap_bps: uint256
    eligibility: address


event Contributed:
    round_id: indexed(uint256)
    model_id: indexed(bytes32)
    contributor: indexed(address)
    amount: uint256
    eligible: bool


event RoundFinalised:
    round_id: indexed(uint256)
    matched: uint256
    returned: uint256


event Claimed:
    round_id: indexed(uint256)
    model_id: indexed(bytes32)
    version_id: indexed(bytes32)
    amount: uint256


@deploy
def __init__(token_: address, registry_: address, treasury_: address):
    """
    @param token_ CommonsToken: pools, contributions and payouts.
    @param registry_ ModelRegistry: which models exist and who their canonical version pays.
    @param treasury_ Receives the part of a payout the attribution list leaves unassigned.
    """
    assert registry_ != empty(address) and treasury_ != empty(address), "ZeroAddress"
    payouts.__init__(token_)
    registry = IModelRegistry(registry_)
    treasury = treasury_


@external
def new_round(pool: uint256, start: uint256, end: uint256, cap_bps: uint256, eligibility: address) -> uint256:
    """
    @notice Open a round funded with `pool` from the caller (who must have approved it).
    @param pool The matching pool, in base units.
    @param start First second contributions are accepted.
    @param end First second they are no longer accepted; in the future.
    @param cap_bps Cap per model in basis points of the pool, 0 for none.
    @param eligibility Contract answering is_eligible(contributor); zero: everyone is eligible.
    @return The round id (1, 2, ...).
    """
    assert pool > 0, "ZeroPool"
    assert pool < MAX_AMOUNT, "AmountTooLarge"
    assert start < end and end > block.timestamp, "InvalidPeriod"
    assert cap_bps <= BPS, "InvalidCap"
    round_id: uint256 = self.round_count + 1
    self.round_count = round_id
    self.rounds[round_id] = Round(
        funder=msg.sender,
        pool=pool,
        start=start,
        end=end,
        cap_bps=cap_bps,
        eligibility=eligibility,
        project_count=0,
        finalised=False,
    )
    log RoundOpened(
        round_id=round_id, funder=msg.sender, pool=pool, start=start, end=end, cap_bps=cap_bps, eligibility=eligibility
    )
    assert extcall payouts.token.transferFrom(msg.sender, self, pool, default_return_value=True), "TransferFailed"
    return round_id


@external
def contribute(round_id: uint256, model_id: bytes32, amount: uint256):
    """
    @notice Give `amount` to a registered model during a round (the caller must have approved
            it). Matched only if the caller is eligible now.
    @param round_id The round.
    @param model_id keccak256 of the model's slug.
    @param amount In base units.
    """
    funding: Round = self.rounds[round_id]
    assert funding.pool != 0, "UnknownRound"
    assert block.timestamp >= funding.start, "RoundNotStarted"
    assert block.timestamp < funding.end, "RoundEnded"
    assert amount > 0, "ZeroAmount"
    position: uint256 = self._position[round_id][model_id]
    if position == 0:
        assert staticcall registry.model_owner(model_id) != empty(address), "UnknownModel"
        assert funding.project_count < MAX_PROJECTS, "RoundFull"
        position = funding.project_count + 1
        self.rounds[round_id].project_count = position
        self._position[round_id][model_id] = position
        self._models[round_id][position] = model_id
    given: uint256 = self._given[round_id][position][msg.sender]
    total_given: uint256 = (given & _LOW) + amount
    assert total_given < MAX_AMOUNT, "AmountTooLarge"
    if given == 0:
        self._contributors[round_id][position] += 1
    eligible_part: uint256 = given >> 128
    eligible: bool = self._is_eligible(funding.eligibility, msg.sender)
    if eligible:
        grown: uint256 = eligible_part + amount
        sums: uint256 = self._sums[round_id][position]
        sqrt_sum: uint256 = (sums >> 128) + isqrt(grown) - isqrt(eligible_part)
        self._sums[round_id][position] = sqrt_sum << 128 | ((sums & _LOW) + amount)
        eligible_part = grown
    self._given[round_id][position][msg.sender] = eligible_part << 128 | total_given
    self._amounts[round_id][position] += amount << 128
    log Contributed(round_id=round_id, model_id=model_id, contributor=msg.sender, amount=amount, eligible=eligible)
    assert extcall payouts.token.transferFrom(msg.sender, self, amount, default_return_value=True), "TransferFailed"


@external
def finalise(round_id: uint256):
    """
    @notice After the end, compute every model's match and credit the rest of the pool to the
            funder (anyone may call it, once).
    @param round_id The round.
    """
    funding: Round = self.rounds[round_id]
    assert funding.pool != 0, "UnknownRound"
    assert block.timestamp >= funding.end, "RoundNotEnded"
    assert not funding.finalised, "AlreadyFinalised"
    self.rounds[round_id].finalised = True
    count: uint256 = funding.project_count
    raws: DynArray[uint256, MAX_PROJECTS] = []
    for position: uint256 in range(1, MAX_PROJECTS + 1):
        if position > count:
            break
        sums: uint256 = self._sums[round_id][position]
        raws.append(quadratic_funding.raw_match(sums >> 128, sums & _LOW))
    paid: DynArray[uint256, MAX_PROJECTS] = quadratic_funding.matches(funding.pool, raws, funding.cap_bps)
    matched: uint256 = 0
    for index: uint256 in range(count, bound=MAX_PROJECTS):
        if paid[index] != 0:
            self._amounts[round_id][index + 1] |= paid[index]
            matched += paid[index]
    returned: uint256 = funding.pool - matched
    if returned != 0:
        payouts._credit(funding.funder, returned, convert(round_id, bytes32))
    log RoundFinalised(round_id=round_id, matched=matched, returned=returned)


@external
def claim(round_id: uint256, model_id: bytes32) -> uint256:
    """
    @notice Credit a funded model's contributions and match to its canonical version's
            attribution list (anyone may call it, once per model and round); each account then
            calls `withdraw`.
    @param round_id A finalised round.
    @param model_id A model that received contributions in it.
    @return The amount credited.
    """
    assert self.rounds[round_id].finalised, "RoundNotFinalised"
    position: uint256 = self._position[round_id][model_id]
    assert position != 0, "UnknownProject"
    assert not self._claimed[round_id][position], "AlreadyClaimed"
    version_id: bytes32 = staticcall registry.canonical(model_id)
    assert version_id != empty(bytes32), "NoCanonicalVersion"
    self._claimed[round_id][position] = True
    amounts: uint256 = self._amounts[round_id][position]
    amount: uint256 = (amounts >> 128) + (amounts & _LOW)
    attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION] = staticcall registry.attribution(
        model_id, version_id
    )
    credits: DynArray[fee_split.Credit, fee_split.MAX_CREDITS] = fee_split.split(amount, 0, attribution, treasury)
    for credit: fee_split.Credit in credits:
        payouts._credit(credit.account, credit.amount, model_id)
    log Claimed(round_id=round_id, model_id=model_id, version_id=version_id, amount=amount)
    return amount


@external
@view
def project(
    round_id: uint256, model_id: bytes32
) -> (uint256, uint256, uint256, uint256, uint256, uint256, bool):
    """
    @param round_id The round.
    @param model_id A model.
    @return (total given, distinct contributors, S_p, C_p, raw_p, match_p (0 before finalise),
            claimed).
    """
    position: uint256 = self._position[round_id][model_id]
    sums: uint256 = self._sums[round_id][position]
    amounts: uint256 = self._amounts[round_id][position]
    sqrt_sum: uint256 = sums >> 128
    eligible_total: uint256 = sums & _LOW
    return (
        amounts >> 128,
        self._contributors[round_id][position],
        sqrt_sum,
        eligible_total,
        quadratic_funding.raw_match(sqrt_sum, eligible_total),
        amounts & _LOW,
        self._claimed[round_id][position],
    )


@external
@view
def projects(round_id: uint256) -> DynArray[bytes32, MAX_PROJECTS]:
    """
    @param round_id The round.
    @return The funded models, in the order they first received a contribution.
    """
    result: DynArray[bytes32, MAX_PROJECTS] = []
    for position: uint256 in range(1, MAX_PROJECTS + 1):
        if position > self.rounds[round_id].project_count:
            break
        result.append(self._models[round_id][position])
    return result


@external
@view
def contribution(round_id: uint256, model_id: bytes32, contributor: address) -> (uint256, uint256):
    """
    @return (everything `contributor` gave to the model in the round, the part given while
            eligible).
    """
    given: uint256 = self._given[round_id][self._position[round_id][model_id]][contributor]
    return given & _LOW, given >> 128


@internal
@view
def _is_eligible(eligibility: address, contributor: address) -> bool:
    if eligibility == empty(address):
        return True
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        eligibility,
        abi_encode(contributor, method_id=method_id("is_eligible(address)")),
        max_outsize=32,
        gas=ELIGIBILITY_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    return success and len(response) == 32 and convert(response, uint256) == 1
