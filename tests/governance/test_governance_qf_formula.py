"""The quadratic-funding formula: quadratic_funding.vy against aicommons.governance.qf, and the
reference itself against hand-computed rounds and its stated invariants."""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.governance.errors import FundingError
from aicommons.governance.qf import Contribution, matches, raw_match, round_matches

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def harness():
    with boa.env.anchor():
        yield load_boa(compile_source_file(HERE / "qf_harness.vy"))


def test_a_round_by_hand():
    # Model a: 4 contributors of 100 -> S = 40, C = 400, raw = 1200.
    # Model b: one contributor of 400 -> S = 20, C = 400, raw = 0 (no match for one backer).
    # Model c: 2 of 50 and one of 2 (isqrt(2) = 1) -> S = 15, C = 102, raw = 123.
    items = [Contribution(f"p{i}", "a", 100, True) for i in range(4)]
    items += [Contribution("q", "b", 400, True)]
    items += [Contribution("r1", "c", 50, True), Contribution("r2", "c", 50, True)]
    items += [Contribution("r3", "c", 2, True)]
    results = {r.model: r for r in round_matches(10_000, items)}
    assert (results["a"].sqrt_sum, results["a"].raw) == (40, 1200)
    assert results["b"].raw == 0 and results["b"].match == 0
    assert (results["c"].sqrt_sum, results["c"].eligible_total, results["c"].raw) == (15, 102, 123)
    assert results["a"].match == 10_000 * 1200 // 1323
    assert results["c"].match == 10_000 * 123 // 1323


def test_floor_square_roots_never_make_raw_negative():
    assert raw_match(1, 2) == 0  # one contributor of 2: isqrt(2)^2 = 1 < 2
    assert raw_match(3, 5) == 4


def test_cap_redistributes_until_no_model_is_above_it():
    # raws 8:1:1 with a 50 % cap: a is capped at 500, b and c share the other 500.
    assert matches(1_000, [8, 1, 1], 5_000) == [500, 250, 250]
    # Cascade: 60:30:10 at 35 %: a capped (600 > 350); then b: 650*30//40 = 487 > 350 capped;
    # then c: 300*10//10 = 300.
    assert matches(1_000, [60, 30, 10], 3_500) == [350, 350, 300]
    # Everything capped: the rest goes back to the funder.
    assert sum(matches(1_000, [1, 1], 1_000)) == 200


def test_bad_inputs_are_refused():
    with pytest.raises(FundingError):
        matches(10, [1], 10_001)
    with pytest.raises(FundingError):
        round_matches(10, [Contribution("a", "m", 0, True)])


raws_strategy = st.lists(
    st.one_of(st.integers(0, 10), st.integers(0, 2**100), st.just(0)), min_size=0, max_size=20
)


@settings(max_examples=150, deadline=None)
@given(
    pool=st.one_of(st.integers(0, 10**6), st.integers(0, 2**92)),
    raws=raws_strategy,
    cap_bps=st.one_of(st.just(0), st.integers(0, 10_000), st.sampled_from([1, 500, 2_500, 10_000])),
)
def test_contract_formula_equals_the_reference_to_the_wei(harness, pool, raws, cap_bps):
    expected = matches(pool, raws, cap_bps)
    assert list(harness.matches(pool, raws, cap_bps)) == expected
    assert sum(expected) <= pool
    if cap_bps:
        assert all(m <= pool * cap_bps // 10_000 for m in expected)
    assert all(m == 0 for m, raw in zip(expected, raws, strict=True) if raw == 0)


@settings(max_examples=60, deadline=None)
@given(sqrt_sum=st.integers(0, 2**120), total=st.integers(0, 2**127))
def test_contract_raw_equals_the_reference(harness, sqrt_sum, total):
    assert harness.raw_match(sqrt_sum, total) == raw_match(sqrt_sum, total)
