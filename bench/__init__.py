"""Benchmarks: each ``bench_*.py`` module has ``run(report: dict) -> dict``; ``python -m bench``."""
