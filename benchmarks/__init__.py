"""Benchmarks for inngest-asgi (issue 6): ``python -m benchmarks.bench``; see docs/benchmarks.md."""
