"""Pins each pytest process to one JAX CPU device.

The CLI exposes every CPU core as a device (``jaxrl.sweep.use_cpu_cores``) when it is
the first JAX work in a process; in-process CLI tests would otherwise change the device
count for every later test in that worker, depending on test order. Multi-device runs
are tested in subprocesses (``test_sweep.py``).
"""

import jax

jax.config.update("jax_num_cpu_devices", 1)
