"""Benchmarks: jaxrl against rejax, SBX and Stable-Baselines3 on the same machine.

``jaxrl bench [--quick] [--out DIR] [--cases NAME,...]`` runs each case, prints a
table and writes ``DIR/bench.json``. Contenders come from the ``bench`` extra
(``pip install -e '.[bench]'``); on a CPU-only machine install the CPU build of
torch first (``pip install 'torch==2.13.0' --index-url
https://download.pytorch.org/whl/cpu``), or pip pulls a multi-GB CUDA build.
A contender that cannot be imported is reported as ``{"status": "missing"}``.
"""

from jaxrl.bench.cases import CASES, Budget, budget_for, run_bench

__all__ = ["CASES", "Budget", "budget_for", "run_bench"]
