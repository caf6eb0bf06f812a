"""Benchmarks: scripts that start what they measure and print side-by-side tables (medians)."""
