"""RBF pivot embedding (docs/method.md §3.5) against plain loops, circular wrap-around, numpy/jax parity."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.descriptors.rbf import rbf_embed


def plain_rbf(xs, num_pivots, sigma, circular):
  out = np.zeros((len(xs), num_pivots))
  for i, x in enumerate(xs):
    for z in range(num_pivots):
      if circular:
        pivot = z / num_pivots
        u = abs(x - pivot) % 1.0
        dist = min(u, 1.0 - u)
      else:
        pivot = z / (num_pivots - 1)
        dist = x - pivot
      out[i, z] = math.exp(-dist * dist / (sigma * sigma))
  return out


@pytest.mark.parametrize('circular', [False, True])
@pytest.mark.parametrize('num_pivots,sigma', [(7, 0.5), (5, 0.2), (12, 0.5)])
def test_matches_plain_loops(circular, num_pivots, sigma):
  xs = np.concatenate([np.linspace(0, 1, 23), [-0.3, 1.25, 0.999999]])
  got = rbf_embed(xs, num_pivots, sigma, circular)
  assert got.shape == (len(xs), num_pivots) and got.dtype == np.float64
  np.testing.assert_allclose(got, plain_rbf(xs, num_pivots, sigma, circular), rtol=1e-12)


def test_batch_shape_and_peak_at_nearest_pivot():
  xs = np.random.default_rng(0).random((4, 3))
  got = rbf_embed(xs, 7, 0.5)
  assert got.shape == (4, 3, 7)
  np.testing.assert_array_equal(np.argmax(got, -1), np.rint(xs * 6).astype(int))
  assert np.all(got > 0) and np.all(got <= 1)
  np.testing.assert_allclose(rbf_embed(np.array([0.5]), 7, 0.5)[0, 3], 1.0)


def test_circular_wraps_around():
  zero, one = rbf_embed(np.array([0.0, 1.0]), 12, 0.5, circular=True)
  np.testing.assert_allclose(zero, one, atol=1e-15)
  a, b = rbf_embed(np.array([0.02, 0.98]), 12, 0.5, circular=True)
  # Symmetric about pivot 0: entry z of 0.02 equals entry -z of 0.98.
  np.testing.assert_allclose(a, np.roll(b[::-1], 1), rtol=1e-12)
  lin_a, lin_b = rbf_embed(np.array([0.02, 0.98]), 12, 0.5, circular=False)
  assert not np.allclose(lin_a, lin_b)


@pytest.mark.parametrize('circular', [False, True])
def test_jax_matches_numpy(circular):
  xs = np.random.default_rng(1).random(50).astype(np.float32)
  got = rbf_embed(jnp.asarray(xs), 12, 0.5, circular)
  assert isinstance(got, jnp.ndarray) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), plain_rbf(xs, 12, 0.5, circular), atol=1e-6)


def test_dtypes():
  assert rbf_embed(np.zeros(3, np.float32), 7).dtype == np.float32
  np.testing.assert_allclose(rbf_embed(np.array([0, 1]), 3, 0.5), plain_rbf([0, 1], 3, 0.5, False))


def test_bad_parameters_raise():
  with pytest.raises(ValueError, match='sigma'):
    rbf_embed(np.zeros(2), 7, 0.0)
  with pytest.raises(ValueError, match='num_pivots'):
    rbf_embed(np.zeros(2), 0)
