# pragma version ~=0.4.3
"""
@title fee_split: how one fee is divided between the treasury and a version's attribution list
@notice The one split every paying contract uses (OnchainExecutor today, ComputeMarket next), so
        an author is paid the same share of a fee whichever way the model is run. With
        p = protocol_share_bps: distributable = fee - fee * p // 10000; each attribution entry
        gets distributable * share_bps // 10000; the treasury gets the rest (the protocol share,
        any share the list leaves unassigned, and rounding dust).
@dev A stateless module: `import fee_split` and call `split`; it reads and writes no storage.
     Invariants of `split(fee, p, attribution, treasury)` for fee <= MAX_FEE, p <= 10000 and
     shares summing to at most 10000 (checked by the callers' constructors and ModelRegistry):
     - the amounts of the returned credits sum to exactly `fee`;
     - no credit has amount 0; the treasury's own credit (if any) comes last;
     - an entry's credit never exceeds its share of the fee (floor division only);
     - no intermediate product overflows (fee * 10000 < 2**256).
     Mirrored by `aicommons.chain.executor.split_fee`, and tested against it.
"""

BPS: constant(uint256) = 10_000
MAX_ATTRIBUTION: constant(uint256) = 16
# The largest fee whose products with a basis-point share cannot overflow; ModelRegistry refuses
# larger fees (InvalidFee).
MAX_FEE: constant(uint256) = max_value(uint256) // BPS
# Every attribution entry, then the treasury.
MAX_CREDITS: constant(uint256) = MAX_ATTRIBUTION + 1


struct Attribution:
    account: address
    role: uint8
    share_bps: uint16


struct Credit:
    account: address
    amount: uint256


@internal
@pure
def split(
    fee: uint256,
    protocol_share_bps: uint256,
    attribution: DynArray[Attribution, MAX_ATTRIBUTION],
    treasury: address,
) -> DynArray[Credit, MAX_CREDITS]:
    """
    @notice Divide `fee` between `attribution` and `treasury` (see the module notice).
    @param fee The amount to divide, in token units.
    @param protocol_share_bps Share of the fee kept for the treasury before attribution, <= 10000.
    @param attribution (account, role, share_bps) entries; their shares sum to at most 10000.
    @param treasury Receives the protocol share, unassigned shares and rounding dust.
    @return The non-zero credits in attribution order, the treasury's last; they sum to `fee`.
    """
    credits: DynArray[Credit, MAX_CREDITS] = []
    distributable: uint256 = fee - fee * protocol_share_bps // BPS
    credited: uint256 = 0
    for entry: Attribution in attribution:
        amount: uint256 = distributable * convert(entry.share_bps, uint256) // BPS
        if amount > 0:
            credits.append(Credit(account=entry.account, amount=amount))
            credited += amount
    rest: uint256 = fee - credited
    if rest > 0:
        credits.append(Credit(account=treasury, amount=rest))
    return credits
