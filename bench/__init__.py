"""Benchmarks: each has ``run(*, quick, out_dir) -> dict`` and writes bench/reports/<name>.{json,md}."""
