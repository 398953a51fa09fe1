"""Count sketch (docs/method.md §3.4): segment sum vs loops and the dense P, unbiased inner products."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.descriptors.sketch import CountSketch


def plain_sketch(x, sketch):
  h, s = sketch.hash_and_sign
  out = np.zeros(sketch.d_out)
  for j in range(sketch.d_in):
    out[int(h[j])] += float(s[j]) * float(x[j])
  return out


def test_hash_and_sign_define_a_valid_sketch_matrix():
  sketch = CountSketch(500, 37, seed=4)
  h, s = sketch.hash_and_sign
  assert h.shape == s.shape == (500,) and h.min() >= 0 and h.max() < 37
  assert set(np.unique(s).tolist()) == {-1.0, 1.0}
  p = sketch.dense_matrix()
  assert p.shape == (37, 500)
  np.testing.assert_array_equal(np.count_nonzero(p, axis=0), 1)  # one +-1 per input coordinate
  np.testing.assert_array_equal(p[h, np.arange(500)], s)
  assert len(np.unique(h)) > 30  # spread over the buckets


def test_matches_plain_loop_and_dense_product():
  sketch = CountSketch(120, 16, seed=1)
  x = np.random.default_rng(0).normal(size=120)
  got = sketch(x)
  assert got.shape == (16,) and got.dtype == np.float64
  np.testing.assert_allclose(got, plain_sketch(x, sketch), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got, sketch.dense_matrix() @ x, rtol=1e-12, atol=1e-12)


def test_batches_are_sketched_row_by_row():
  sketch = CountSketch(50, 8, seed=2)
  x = np.random.default_rng(1).normal(size=(3, 4, 50))
  got = sketch(x)
  assert got.shape == (3, 4, 8)
  np.testing.assert_allclose(got, x @ sketch.dense_matrix().T, rtol=1e-12, atol=1e-12)
  for i in range(3):
    for k in range(4):
      np.testing.assert_allclose(got[i, k], plain_sketch(x[i, k], sketch), atol=1e-12)


def test_float32_stays_float32():
  sketch = CountSketch(30, 5, seed=0)
  x = np.random.default_rng(2).normal(size=(2, 30)).astype(np.float32)
  got = sketch(x)
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, x @ sketch.dense_matrix().T, rtol=1e-5, atol=1e-5)


def test_jax_matches_numpy_under_jit():
  sketch = CountSketch(64, 12, seed=9)
  x = np.random.default_rng(3).normal(size=(5, 64)).astype(np.float32)
  got = jax.jit(sketch)(jnp.asarray(x))
  assert isinstance(got, jax.Array) and got.shape == (5, 12)
  np.testing.assert_allclose(np.asarray(got), sketch(x), rtol=1e-5, atol=1e-5)
  one = sketch(jnp.asarray(x[0]))
  np.testing.assert_allclose(np.asarray(one), sketch(x[0]), rtol=1e-5, atol=1e-5)
  grad = jax.grad(lambda v: jnp.sum(sketch(v) ** 2))(jnp.asarray(x[0]))  # = 2 P^T P x
  p = sketch.dense_matrix()
  np.testing.assert_allclose(np.asarray(grad), 2 * p.T @ p @ x[0], rtol=1e-4, atol=1e-4)


def test_fixed_seed_is_reproducible_and_seeds_differ():
  a, b, c = CountSketch(200, 20, 7), CountSketch(200, 20, 7), CountSketch(200, 20, 8)
  np.testing.assert_array_equal(a.dense_matrix(), b.dense_matrix())
  assert not np.array_equal(a.dense_matrix(), c.dense_matrix())
  x = np.random.default_rng(4).normal(size=200)
  np.testing.assert_array_equal(a(x), b(x))


def test_wrong_dimension_raises():
  with pytest.raises(ValueError, match='last dim 10'):
    CountSketch(10, 4, 0)(np.zeros((2, 9)))


def test_inner_products_are_unbiased_over_seeds():
  """E<P a, P b> = <a, b>; Var <= (<a,b>^2 + |a|^2 |b|^2) / d' (docs/method.md §3.4)."""
  rng = np.random.default_rng(5)
  d_in, d_out, num_seeds = 64, 16, 4000
  a = rng.normal(size=d_in)
  b = 0.6 * a + rng.normal(size=d_in)  # correlated, so <a, b> is far from zero
  exact = float(a @ b)
  estimates = np.array([CountSketch(d_in, d_out, seed)(a) @ CountSketch(d_in, d_out, seed)(b)
                        for seed in range(num_seeds)])
  bound = (exact ** 2 + (a @ a) * (b @ b)) / d_out
  # Exact variance: (1/d') sum_{i != j} (a_i^2 b_j^2 + a_i b_i a_j b_j).
  off = 1.0 - np.eye(d_in)
  exact_var = (np.sum(np.outer(a * a, b * b) * off) + np.sum(np.outer(a * b, a * b) * off)) / d_out
  assert exact_var <= bound
  # The mean of num_seeds estimates has standard error <= sqrt(bound / num_seeds): 5 of those.
  assert abs(estimates.mean() - exact) < 5.0 * np.sqrt(bound / num_seeds)
  assert 0.8 * exact_var < estimates.var() < 1.2 * exact_var
  # The check has power: the same hashes without the random signs give a biased estimate
  # (E = <a, b> + (sum_{i != j} a_i b_j) / d'), which the same tolerance rejects.
  unsigned = []
  for seed in range(num_seeds // 4):
    h, _ = CountSketch(d_in, d_out, seed).hash_and_sign
    unsigned.append(np.bincount(h, a, d_out) @ np.bincount(h, b, d_out))
  assert abs(np.mean(unsigned) - exact) > 5.0 * np.sqrt(bound / (num_seeds // 4))
