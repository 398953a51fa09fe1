"""The CPU backend as N host devices (`config.train.cpu_devices`), one per core.

XLA:CPU runs one program on one device with a shared intra-op thread pool, and parallelises
little of a small model's step beyond its larger matmuls: on the 2-core development CPU the
default model's step gains 1.25x from the second core where PyTorch's gains 1.7x (README,
'Against a PyTorch peer'). Splitting the batch over two host devices runs two halves of every op
side by side: 0.86x the default model's step and 0.81x I3D-mini's, 0.97x ViViT-S's (5 and 3
alternating rounds, README). The data mesh then has N devices, so the batch must divide by N;
the sums and means of the step are the same up to float reduction order.

Set before JAX's backends start: `configure` is called by the launchers (`halluc_jax.main`, the
benchmarks) before the first device is touched. An explicit
`--xla_force_host_platform_device_count` in `XLA_FLAGS` (as the multi-device tests set) wins.
"""
import os

from absl import logging
import jax

_XLA_FLAG = '--xla_force_host_platform_device_count'


def configure(num_devices):
  """Makes the CPU backend expose `num_devices` devices (1 = JAX's default, nothing changes).

  Args:
    num_devices: int >= 1 (`config.train.cpu_devices`).

  Raises:
    ValueError: `num_devices` is not a positive integer, or JAX's backends already started.
  """
  if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
    raise ValueError(f'config.train.cpu_devices={num_devices!r}; expected an integer >= 1 '
                     '(1 = one CPU device, N = the batch split over N host devices).')
  if num_devices == 1:
    return
  if _XLA_FLAG in os.environ.get('XLA_FLAGS', ''):
    logging.info('XLA_FLAGS sets %s; config.train.cpu_devices=%d not applied.', _XLA_FLAG,
                 num_devices)
    return
  try:
    jax.config.update('jax_num_cpu_devices', num_devices)
  except RuntimeError as e:  # the backend already started: too late to change the count
    raise ValueError(f'config.train.cpu_devices={num_devices} must be set before JAX starts its '
                     f'backends ({e})') from e
  logging.info('CPU backend: %d host devices (config.train.cpu_devices).', num_devices)
