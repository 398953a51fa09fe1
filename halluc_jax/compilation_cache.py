"""JAX's persistent compilation cache for the trainer (`config.train.compilation_cache_dir`)."""
import os

from absl import logging
import jax


def enable(cache_dir):
  """Points JAX's persistent compilation cache at `cache_dir` ('' leaves it off).

  Programs that took at least a second to compile are stored, keyed by the program and the
  devices, so a rerun of the same config skips XLA's compilation (the first step of the default
  run compiles both passes). A cache that cannot be written is logged and left off.
  """
  if not cache_dir:
    return
  path = os.path.abspath(os.path.expanduser(cache_dir))
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    logging.warning('Compilation cache %s unusable (%s); compiling without it.', path, e)
    return
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  logging.info('Compilation cache: %s', path)
