"""Benchmarks: scripts that measure, run by hand; not collected as tests."""
