"""Power normalisations (docs/method.md §3.3) vs plain loops; order, oddness, range, numpy/jax parity."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.descriptors import power_norm as pn


def plain(name, vec, **p):
  norm = math.sqrt(sum(v * v for v in vec))
  out = []
  for v in map(float, vec):
    if name == 'asinhe':
      out.append(math.asinh(p['gamma'] * v) / math.asinh(p['gamma']))
    elif name == 'sigme':  # the paper's logistic form, not the tanh identity the code uses
      out.append(2.0 / (1.0 + math.exp(-p['eta'] * v / (norm + p['eps']))) - 1.0)
    elif name == 'axmin':
      sign = (v > 0) - (v < 0)
      out.append(sign * min(p['eta'] * abs(v) / (norm + p['eps']), 1.0))
    elif name == 'gamma':
      sign = (v > 0) - (v < 0)
      out.append(sign * abs(v) ** p['gamma'])
  return np.array(out)


CASES = [('asinhe', {'gamma': 100.0}), ('asinhe', {'gamma': 3.0}),
         ('sigme', {'eta': 50.0, 'eps': 1e-6}), ('sigme', {'eta': 2.0, 'eps': 0.1}),
         ('axmin', {'eta': 30.0, 'eps': 1e-6}), ('axmin', {'eta': 2.0, 'eps': 1e-6}),
         ('gamma', {'gamma': 0.5}), ('gamma', {'gamma': 1.0})]


def sample(seed=0, d=40):
  rng = np.random.default_rng(seed)
  return rng.normal(size=d) * rng.choice([1e-3, 1.0, 10.0], size=d)


@pytest.mark.parametrize('name,params', CASES)
def test_matches_plain_loops(name, params):
  x = sample()
  got = pn.power_normalize(x, name, **params)
  assert got.shape == x.shape and got.dtype == np.float64
  np.testing.assert_allclose(got, plain(name, x, **params), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('name,params', CASES)
def test_odd_and_order_preserving(name, params):
  x = sample(1)
  y = pn.power_normalize(x, name, **params)
  np.testing.assert_allclose(pn.power_normalize(-x, name, **params), -y, rtol=1e-15)
  order = np.argsort(x)
  assert np.all(np.diff(y[order]) >= 0)  # same norm for all entries: monotone in each entry
  if name != 'axmin':  # AxMin clips, the others are strictly increasing
    assert np.all(np.diff(y[order]) > 0)


@pytest.mark.parametrize('name', ['asinhe', 'gamma'])
def test_elementwise_monotone_on_a_grid(name):
  grid = np.linspace(-5, 5, 1001)
  assert np.all(np.diff(pn.power_normalize(grid[:, None], name)[:, 0]) > 0)


def test_ranges():
  x = sample(2)
  s = pn.sigme(x)
  assert np.all(np.abs(s) <= 1.0)
  assert np.all(np.abs(pn.sigme(x, eta=1.0)) < 1.0)  # |arg| <= 1/2: strictly inside (-1, 1)
  # tanh(25) rounds to 1.0 in float64, so with eta=50 a dominant entry reaches 1 numerically.
  np.testing.assert_allclose(pn.sigme(np.array([1.0, 0.0]))[0], 1.0)
  a = pn.axmin(x)
  assert np.all(np.abs(a) <= 1.0) and np.any(np.abs(a) == 1.0)
  assert np.all((np.abs(a) == 1.0) == (30.0 * np.abs(x) / (np.linalg.norm(x) + 1e-6) >= 1.0))
  np.testing.assert_allclose(pn.asinhe(np.array([1.0, -1.0])), [1.0, -1.0])
  assert pn.asinhe(np.array([1e6]))[0] > 2.0  # unbounded
  assert np.all(np.abs(pn.gamma_pn(np.array([0.25, 4.0]))) == [0.5, 2.0])


def test_rows_are_normalised_independently():
  batch = np.stack([sample(3), 100.0 * sample(4)])
  for fn in (pn.sigme, pn.axmin):
    got = fn(batch)
    for i in range(2):
      np.testing.assert_allclose(got[i], fn(batch[i]), rtol=1e-14)
  # SigmE and AxMin only see x / ||x||: rescaling a row changes nothing (up to eps).
  np.testing.assert_allclose(pn.sigme(7.0 * batch), pn.sigme(batch), rtol=1e-5)


@pytest.mark.parametrize('name,params', CASES)
def test_jax_matches_numpy(name, params):
  x = sample(5).astype(np.float32)
  ref = plain(name, x.astype(np.float64), **params)
  got = jax.jit(lambda v: pn.power_normalize(v, name, **params))(jnp.asarray(x))
  assert isinstance(got, jax.Array) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-5, atol=2e-6)
  np.testing.assert_allclose(pn.power_normalize(x, name, **params), ref, rtol=2e-5, atol=2e-6)


def test_gradients_are_finite_under_jax():
  x = jnp.asarray(sample(6), jnp.float32)
  for name in ('asinhe', 'sigme', 'axmin'):
    grad = jax.grad(lambda v: jnp.sum(pn.power_normalize(v, name) ** 2))(x)
    assert bool(jnp.all(jnp.isfinite(grad))), name


def test_dispatch():
  x = sample(7)
  assert pn.power_normalize(x, 'none') is x
  with pytest.raises(ValueError, match='Unknown power normalisation'):
    pn.power_normalize(x, 'maxexp')
