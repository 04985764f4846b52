# pragma version ~=0.4.3
"""
@title quadratic_funding: the exact integer matching formula of a funding round (CLR)
@notice For each model p, with S_p = sum over eligible contributors c of isqrt(t_pc) and
        C_p = sum of the same t_pc (t_pc: c's eligible contributions to p, in base units):
        raw_p = S_p^2 - C_p, or 0 when that is negative (floor square roots can make it so);
        match_p = pool * raw_p // sum_q raw_q, and nothing at all when sum_q raw_q = 0.
        With a cap (cap_bps > 0, cap = pool * cap_bps // 10000): every match above the cap
        becomes the cap, and what the uncapped models share is recomputed from what is left,
        remaining = pool - (number of capped models) * cap, in proportion to raw_p with the
        same floor division; repeated until no model exceeds the cap. The rest of the pool
        (rounding, caps) is the funder's.
@dev A stateless module: `import quadratic_funding`. Mirrored, line by line of the notice, by
     `aicommons.governance.qf.matches` and tested against it on random rounds.
     Invariants for pool < 2**128, raws < 2**128 (FundingRound keeps S_p, C_p < 2**128):
     - sum of matches <= pool; every match <= cap when capped;
     - a model with raw_p = 0 gets 0;
     - each pass caps at least one more model or ends, so at most len(raws) + 1 passes;
     - no product overflows: pool * raw_p < 2**256.
"""

BPS: constant(uint256) = 10_000
MAX_PROJECTS: constant(uint256) = 256


@internal
@pure
def raw_match(sqrt_sum: uint256, total: uint256) -> uint256:
    """
    @param sqrt_sum S_p, the sum of the floor square roots of each contributor's total.
    @param total C_p, the sum of those totals.
    @return max(S_p^2 - C_p, 0).
    """
    square: uint256 = sqrt_sum * sqrt_sum
    if square > total:
        return square - total
    return 0


@internal
@pure
def matches(pool: uint256, raws: DynArray[uint256, MAX_PROJECTS], cap_bps: uint256) -> DynArray[uint256, MAX_PROJECTS]:
    """
    @param pool The matching pool.
    @param raws raw_p of every model, in round order.
    @param cap_bps The cap per model in basis points of the pool; 0 for none.
    @return match_p of every model, in the same order.
    """
    count: uint256 = len(raws)
    result: DynArray[uint256, MAX_PROJECTS] = []
    capped: DynArray[bool, MAX_PROJECTS] = []
    for _: uint256 in range(count, bound=MAX_PROJECTS):
        result.append(0)
        capped.append(False)
    cap: uint256 = pool * cap_bps // BPS
    remaining: uint256 = pool
    for _: uint256 in range(MAX_PROJECTS + 1):
        shared: uint256 = 0
        for index: uint256 in range(count, bound=MAX_PROJECTS):
            if not capped[index]:
                shared += raws[index]
        if shared == 0:
            break
        over_cap: bool = False
        if cap_bps != 0:
            for index: uint256 in range(count, bound=MAX_PROJECTS):
                if not capped[index] and remaining * raws[index] // shared > cap:
                    over_cap = True
        if not over_cap:
            for index: uint256 in range(count, bound=MAX_PROJECTS):
                if not capped[index]:
                    result[index] = remaining * raws[index] // shared
            break
        # Cap every model above the cap in this pass, then share what is left again.
        spent: uint256 = 0
        for index: uint256 in range(count, bound=MAX_PROJECTS):
            if not capped[index] and remaining * raws[index] // shared > cap:
                capped[index] = True
                result[index] = cap
                spent += cap
        remaining -= spent
    return result
