"""Fixtures of the market flow tests (defined in flow_fixtures.py, shared with the tests)."""

from flow_fixtures import daemons, market_home, market_net

__all__ = ["daemons", "market_home", "market_net"]
