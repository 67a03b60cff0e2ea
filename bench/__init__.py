"""recstream benchmarks: the pipeline's figures next to the same machine's limits.

``recstream bench --out results/bench-<date>`` (or ``python -m bench``) runs them;
see ``docs/performance.md``.
"""
