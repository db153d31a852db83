"""Benchmarks that anyone can run: ``python -m bench.cart_throughput`` (see bench/README.md)."""
