"""Checkpoints of a run's pytree: NumPy ``.npz`` data plus a JSON description, no pickle.

A checkpoint is a folder ``DIR/step_000010/`` holding ``state.npz`` (one array per
leaf, named by its pytree path) and ``meta.json`` (the run description it was written
for, each leaf's shape and dtype, and the SHA-256 of ``state.npz``). It is written
into a temporary folder and renamed into place, so a crash never leaves a
half-written checkpoint; on load, the hash, the run description and every leaf's
shape and dtype are checked against what the caller expects, and any difference is a
``CheckpointError`` with a one-line message.

Many processes (``--distributed``): process 0 gathers and writes, every process reads.
The runner gathers the state from every host (``runner.to_host``, an all-gather) and
only process 0 calls ``save``, so a checkpoint is the same single folder however the
run was laid out: one writer makes the temporary-folder rename the whole commit (with a
writer per host, a crash between hosts' writes would leave a partial checkpoint, and
restore would need every host's part and the old layout). On resume each process reads
the whole checkpoint and keeps its own shards, so the folder must be shared by the
hosts (or copied to each). The price, an all-gather of the run state per checkpoint
and the whole state in each host's memory, is small for most RL agents (PPO's
parameters and optimiser state); a large replay buffer is the case where it is not.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT = "jaxrl-checkpoint/1"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or was written for a different run."""


def _leaves(tree: Any) -> tuple[list[str], list[Any], Any]:
    """Leaf names (pytree paths), leaves and tree structure of ``tree``."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(path) or "root" for path, _ in pairs]
    return names, [leaf for _, leaf in pairs], treedef


def _step_dir(directory: Path, step: int) -> Path:
    return directory / f"step_{step:06d}"


def steps(directory: str | os.PathLike) -> list[int]:
    """The steps of the complete checkpoints in ``directory``, ascending."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = (_STEP_DIR.match(p.name) for p in directory.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def save(
    directory: str | os.PathLike, step: int, tree: Any, meta: dict[str, Any], keep: int = 2
) -> Path:
    """Writes ``tree`` (arrays on the host or fully addressable) as checkpoint ``step``.

    ``meta`` is a JSON-able description of the run that ``restore`` compares with.
    Keeps the newest ``keep`` checkpoints and deletes older ones. Returns the folder.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names, leaves, _ = _leaves(tree)
    arrays = {name: np.asarray(leaf) for name, leaf in zip(names, leaves, strict=True)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    description = {
        "format": FORMAT,
        "step": step,
        "run": meta,
        "leaves": {k: [list(v.shape), v.dtype.str] for k, v in arrays.items()},
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".tmp-"))
    try:
        for name, content in (
            ("state.npz", data),
            ("meta.json", (json.dumps(description, indent=1) + "\n").encode()),
        ):
            with open(tmp / name, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        final = _step_dir(directory, step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in steps(directory)[:-keep]:
        shutil.rmtree(_step_dir(directory, old), ignore_errors=True)
    return final


def _describe_difference(found: dict, expected: dict, prefix: str = "") -> str:
    """The first few keys where two run descriptions differ, as ``key: a there, b here``."""
    diffs = []
    for key in sorted(set(found) | set(expected)):
        a, b = found.get(key), expected.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _describe_difference(a, b, f"{prefix}{key}.")
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{prefix}{key} is {a!r} there, {b!r} here")
    return "; ".join(diffs[:4])


def read_meta(directory: str | os.PathLike, step: int | None = None) -> dict[str, Any]:
    """The ``meta.json`` of checkpoint ``step`` (default: the newest) in ``directory``,
    plus ``"path"``: the checkpoint's folder."""
    directory = Path(directory)
    available = steps(directory)
    if not available:
        raise CheckpointError(f"no checkpoint in {directory}")
    step = available[-1] if step is None else step
    path = _step_dir(directory, step) / "meta.json"
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"corrupt checkpoint {path.parent}: unreadable meta.json") from err
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise CheckpointError(f"{path.parent} is not a {FORMAT} checkpoint")
    description["path"] = str(path.parent)
    return description


def check_run(description: dict[str, Any], meta: dict[str, Any]) -> None:
    """Raises CheckpointError unless ``description`` (from ``read_meta``) is for ``meta``."""
    if description.get("run") != meta:
        diff = _describe_difference(description.get("run") or {}, meta)
        raise CheckpointError(
            f"checkpoint {description.get('path')} was written for a different run: {diff}"
        )


def restore(directory: str | os.PathLike, step: int, like: Any, meta: dict[str, Any]) -> Any:
    """Reads checkpoint ``step`` into the structure of ``like`` (arrays or ShapeDtypeStructs).

    Raises:
      CheckpointError: the checkpoint is missing or corrupt, was written for a run other
        than ``meta`` describes, or its leaves differ from ``like`` in name, shape or dtype.
    """
    directory = Path(directory)
    description = read_meta(directory, step)
    folder = _step_dir(directory, step)
    check_run(description, meta)
    try:
        data = (folder / "state.npz").read_bytes()
    except OSError as err:
        raise CheckpointError(f"corrupt checkpoint {folder}: missing state.npz") from err
    if hashlib.sha256(data).hexdigest() != description.get("sha256"):
        raise CheckpointError(f"corrupt checkpoint {folder}: state.npz does not match its hash")
    names, leaves, treedef = _leaves(like)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"corrupt checkpoint {folder}: {err}") from err
    missing = [n for n in names if n not in arrays]
    extra = [n for n in arrays if n not in set(names)]
    if missing or extra:
        raise CheckpointError(
            f"checkpoint {folder} has a different structure: "
            f"missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for name, leaf in zip(names, leaves, strict=True):
        a = arrays[name]
        if a.shape != tuple(leaf.shape) or a.dtype != np.dtype(leaf.dtype):
            raise CheckpointError(
                f"checkpoint {folder}: {name} is {a.dtype}{list(a.shape)} there, "
                f"{np.dtype(leaf.dtype)}{list(leaf.shape)} here"
            )
    return jax.tree_util.tree_unflatten(treedef, [arrays[n] for n in names])
