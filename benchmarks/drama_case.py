"""Bench case ``drama_world_model``: world-model training cost vs sequence length,
Mamba-2 (Drama) against a causal Transformer of about equal parameter count.

For each sequence length ``L`` one jitted training step (world-model loss, gradient,
Adam update) runs on ``batch`` sequences of MinAtar-sized observations (``[400]``
vectors, MLP encoder/decoder, the same heads), with the sequence model either
``MambaStack`` or ``TransformerStack`` (``ff_mult=1``: within a few percent of the
Mamba's parameters; both counts are recorded). Reported per length and model:

- ``seconds_per_sequence``: median step time over ``repeats`` timed steps / batch;
- ``temp_bytes_per_sequence``: XLA's compiled temporary buffer size for the step
  (``jit(f).lower(...).compile().memory_analysis().temp_size_in_bytes``) / batch. On a
  CPU there is no device allocator to ask for a runtime peak; this static figure is the
  working memory XLA plans for one step (parameters and inputs excluded).

``transformer_over_mamba_time`` and ``transformer_over_mamba_memory`` (per length) are
Transformer / Mamba: they grow with ``L`` when attention's ``O(L^2)`` dominates. They
are internal comparisons, not ratios against an external library. The contenders'
``env_steps_per_second`` column is world-model *sequence steps* trained per second at
the longest length.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from benchmarks import harness
from jaxrl.core import adam

OBS_DIM = 400  # MinAtar's 10 x 10 x 4 grid, flattened
NUM_ACTIONS = 6

#: Per bench mode: sequence lengths, batch, model width, timed repeats.
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"lengths": (64, 256, 1024), "batch": 8, "d_model": 256, "layers": 2, "repeats": 5},
    "quick": {"lengths": (64, 256, 1024), "batch": 4, "d_model": 64, "layers": 2, "repeats": 2},
    "tiny": {"lengths": (16,), "batch": 2, "d_model": 16, "layers": 1, "repeats": 1},
}


def _step_fn(sequence_model: str, d_model: int, layers: int, length: int, batch: int):
    from jaxrl.models.world_model import (
        WorldModel,
        WorldModelConfig,
        count_params,
        world_model_loss,
    )

    config = WorldModelConfig(
        stoch=16,
        classes=16,
        d_model=d_model,
        num_layers=layers,
        head_dim=min(32, 2 * d_model),
        chunk_size=64,
        hidden=2 * d_model,
        encoder="mlp",
        sequence_model=sequence_model,
        num_attention_heads=4,
        ff_mult=1,
    )
    model = WorldModel(config, (OBS_DIM,), NUM_ACTIONS)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    data = {
        "obs": (jax.random.uniform(keys[0], (batch, length, OBS_DIM)) < 0.1).astype(jnp.float32),
        "action": jax.random.randint(keys[1], (batch, length), 0, NUM_ACTIONS),
        "reward": jnp.zeros((batch, length)),
        "terminated": jnp.zeros((batch, length), jnp.bool_),
    }
    params = model.init(keys[2], data["obs"][:1, :2], data["action"][:1, :2])
    tx = adam(1e-4)

    def step(params, opt_state, key):
        grads, info = jax.grad(lambda p: world_model_loss(model, p, data, key), has_aux=True)(
            params
        )
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, info["wm_loss"]

    return (
        step,
        params,
        tx.init(params),
        count_params(params),
        count_params(params["params"]["mamba"]),
    )


def _measure(sequence_model: str, s: dict[str, Any], length: int):
    batch = s["batch"]
    step, params, opt_state, n_params, n_seq = _step_fn(
        sequence_model, s["d_model"], s["layers"], length, batch
    )
    key = jax.random.PRNGKey(1)
    compiled, compile_s = harness.timed(
        lambda: jax.jit(step).lower(params, opt_state, key).compile()
    )
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    harness.timed(lambda: compiled(params, opt_state, key))  # warm-up
    seconds = [
        harness.timed(lambda: compiled(params, opt_state, key))[1] for _ in range(s["repeats"])
    ]
    median = harness.median(seconds)
    return {
        "params": n_params,
        "sequence_model_params": n_seq,
        "compile_seconds": compile_s,
        "step_seconds": seconds,
        "seconds_per_sequence": median / batch,
        "temp_bytes_per_sequence": None if temp is None else temp / batch,
    }


def drama_world_model(budget: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Mamba vs Transformer world-model training time and memory at several lengths."""
    s = SETTINGS[budget.mode]
    per_length: dict[str, dict[str, Any]] = {}
    for length in s["lengths"]:
        per_length[str(length)] = {
            name: _measure(name, s, length) for name in ("mamba", "transformer")
        }
    longest = per_length[str(s["lengths"][-1])]
    contenders = {}
    for name in ("mamba", "transformer"):
        figures = longest[name]
        contenders[f"jaxrl/{name}"] = {
            "status": "ok",
            "compile_seconds": figures["compile_seconds"],
            "env_steps_per_second": s["lengths"][-1] / figures["seconds_per_sequence"],
            "params": figures["params"],
        }

    def over(field: str) -> dict[str, float | None]:
        out = {}
        for length, pair in per_length.items():
            m, t = pair["mamba"][field], pair["transformer"][field]
            out[length] = None if not m or t is None else t / m
        return out

    return {
        "settings": {
            "lengths": list(s["lengths"]),
            "batch": s["batch"],
            "d_model": s["d_model"],
            "num_layers": s["layers"],
            "obs": f"[{OBS_DIM}] binary vectors, MLP encoder/decoder, 16x16 latents",
            "repeats": s["repeats"],
            "notes": [
                "one jitted step = world-model loss + gradient + Adam update",
                "memory: XLA compiled temp buffer size per sequence (static, from "
                "memory_analysis(); CPU has no runtime peak-memory query)",
                "Transformer: causal softmax attention, ff_mult=1, sinusoidal positions",
                "contenders' env_steps_per_second = sequence steps trained per second "
                "at the longest length",
            ],
        },
        "contenders": contenders,
        "per_length": per_length,
        "transformer_over_mamba_time": over("seconds_per_sequence"),
        "transformer_over_mamba_memory": over("temp_bytes_per_sequence"),
    }
