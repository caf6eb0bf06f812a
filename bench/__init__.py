"""Benchmarks: scripts that start what they measure and print side-by-side tables (medians)."""

import common  # noqa: F401  (first: gRPC settings, see common/__init__.py)
