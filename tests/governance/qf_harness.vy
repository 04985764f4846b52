# pragma version ~=0.4.3
"""
@title qf_harness: exposes the stateless quadratic_funding module for tests.
"""

import quadratic_funding


@external
@pure
def raw_match(sqrt_sum: uint256, total: uint256) -> uint256:
    return quadratic_funding.raw_match(sqrt_sum, total)


@external
@pure
def matches(
    pool: uint256, raws: DynArray[uint256, quadratic_funding.MAX_PROJECTS], cap_bps: uint256
) -> DynArray[uint256, quadratic_funding.MAX_PROJECTS]:
    return quadratic_funding.matches(pool, raws, cap_bps)
