"""Tests on real servers; importing common first puts gRPC settings in place (common/__init__.py)."""

import common  # noqa: F401
