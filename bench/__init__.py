"""Benchmarks of the foundation (run with `bash bench/run.sh`; not part of the test suite)."""
