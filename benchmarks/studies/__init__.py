"""One-off studies: runs that informed a decision once and are kept for the record (``benchmarks/results/``).

Run each from the repository root as ``python -m benchmarks.studies.<script> [options]``.
"""
