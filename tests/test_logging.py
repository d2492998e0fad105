"""TensorBoard events: one run per seed plus the mean over seeds, readable back."""

import struct

import numpy as np
from tensorboardX.proto import event_pb2

from jaxrl import logging as jlog


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` from the TFRecord event files in ``logdir``."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4  # length, its CRC, payload, payload CRC
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_writes_per_seed_and_mean(tmp_path):
    steps = np.array([[100, 200, 300]] * 2)
    returns = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 7.0]], np.float32)
    metrics = {"env_steps": steps, "eval_return": returns, "finite": np.ones((2, 3), bool)}
    jlog.write_tensorboard(tmp_path, metrics)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mean", "seed_0", "seed_1"]
    for name, expected in (("seed_0", returns[0]), ("seed_1", returns[1])):
        got = read_scalars(tmp_path / name)["eval_return"]
        assert [s for s, _ in got] == [100, 200, 300]
        np.testing.assert_allclose([v for _, v in got], expected)
    mean = read_scalars(tmp_path / "mean")
    np.testing.assert_allclose([v for _, v in mean["eval_return"]], [2.0, 3.0, 5.0])
    np.testing.assert_allclose([v for _, v in mean["finite"]], [1.0, 1.0, 1.0])
