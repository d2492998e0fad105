"""XLA's own Cholesky and triangular solve on CPU, in place of jaxlib's LAPACK calls.

jaxlib 0.10's CPU LAPACK kernels split a batched call (a vmapped ``cholesky`` or
``triangular_solve``) into chunks queued on XLA:CPU's intra-op thread pool, then block
until the chunks finish. When as many such calls as the pool has threads run at once
(independent ops of one program, e.g. the solvers of an MJX step and of a reset under the
seed ``vmap``), every pool thread blocks on chunks that no thread is free to run, and the
process hangs idle. On 2 cores this hung ``experiments/gpayn_grasp.py`` (gdb: both
``tf_XLAEigen`` threads in ``lapack_spotrf_ffi`` -> ``jax::ParallelBatchMap`` ->
``BlockingCounter::Wait``), as flax's QR initialiser had hung ``golden.py`` (hence
``jaxrl.nets.init.orthogonal``).

XLA lowers ``stablehlo.cholesky`` and ``stablehlo.triangular_solve`` itself (its
expander passes emit loops of plain ops, no custom call), which cannot deadlock. Same
maths; float32 results differ from LAPACK's in the last bits. ``import jaxrl`` applies
it (``jaxrl/__init__.py``), so every program jaxrl lowers afterwards uses it.
"""

from __future__ import annotations

from jax._src.interpreters import mlir
from jax._src.lax import linalg


def use_xla_linalg_on_cpu() -> None:
    """Lower ``cholesky`` and ``triangular_solve`` on CPU with XLA's own ops (for
    programs lowered from now on; idempotent)."""
    mlir.register_lowering(linalg.cholesky_p, linalg._cholesky_lowering, platform="cpu")
    mlir.register_lowering(
        linalg.triangular_solve_p, linalg._triangular_solve_lowering, platform="cpu"
    )
