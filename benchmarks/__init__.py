"""Benchmarks: jaxrl against rejax, SBX and Stable-Baselines3 on the same machine.

``jaxrl bench [--quick] [--out DIR] [--cases NAME,...]`` runs each case, prints a
table and writes ``DIR/bench.json``. Contenders come from the ``bench`` extra
(``pip install -e '.[bench]'``); on a CPU-only machine install the CPU build of
torch first (``pip install 'torch==2.13.0' --index-url
https://download.pytorch.org/whl/cpu``), or pip pulls a multi-GB CUDA build.
A contender that cannot be imported is reported as ``{"status": "missing"}``.

This package lives at the repository root, outside the installed ``jaxrl`` (``pip install
-e .`` installs ``jaxrl*`` only): ``jaxrl bench`` finds it beside the ``jaxrl`` package of
a checkout, and tests import it with the repository root on the path.
"""

from benchmarks.cases import CASES, Budget, budget_for, run_bench

__all__ = ["CASES", "Budget", "budget_for", "run_bench"]
