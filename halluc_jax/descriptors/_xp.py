"""Array-namespace dispatch, so descriptor maths serves numpy (offline) and jax (in-graph)."""
import numpy as np


def array_namespace(x):
  """Returns `jax.numpy` for jax arrays and tracers, `numpy` otherwise."""
  if type(x).__module__.startswith(('jax', 'jaxlib')):
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    return jnp
  return np
