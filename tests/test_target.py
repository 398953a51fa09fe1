"""GT target = sketch(PN(l2-normalised descriptor)) (docs/method.md §3.7 step 7, 9.10), vs plain loops."""
import math

import numpy as np
import pytest

from halluc_jax.descriptors import target
from halluc_jax.descriptors.sketch import CountSketch


def plain_target(vec, sketch, eta, eps):
  norm = math.sqrt(sum(v * v for v in vec))
  unit = [v / norm for v in vec]
  unit_norm = math.sqrt(sum(u * u for u in unit))
  pn = [2.0 / (1.0 + math.exp(-eta * u / (unit_norm + eps))) - 1.0 for u in unit]
  h, s = sketch.hash_and_sign
  out = [0.0] * sketch.d_out
  for j, value in enumerate(pn):
    out[int(h[j])] += float(s[j]) * value
  return np.array(out)


def test_matches_plain_sigme_then_sketch():
  vec = np.random.default_rng(0).normal(size=300) * 40.0
  sketch = target.modality_sketch('odf/det1', 300, 32)
  got = target.gt_target(vec, sketch, eta=50.0)
  assert got.shape == (32,) and got.dtype == np.float64
  np.testing.assert_allclose(got, plain_target(vec, sketch, 50.0, 1e-6), rtol=1e-10, atol=1e-12)


def test_batched_rows_are_independent():
  vecs = np.random.default_rng(1).normal(size=(3, 50))
  sketch = CountSketch(50, 8, seed=3)
  batch = target.gt_target(vecs, sketch)
  for i in range(3):
    np.testing.assert_allclose(batch[i], target.gt_target(vecs[i], sketch), rtol=1e-12)


def test_zero_descriptor_stays_zero_and_scale_is_irrelevant():
  sketch = CountSketch(20, 4, seed=0)
  assert not target.gt_target(np.zeros(20), sketch).any()
  vec = np.random.default_rng(2).normal(size=20)
  for pn in ('sigme', 'asinhe', 'axmin', 'gamma', 'none'):
    np.testing.assert_allclose(target.gt_target(1e3 * vec, sketch, pn=pn),
                               target.gt_target(vec, sketch, pn=pn), rtol=1e-9)


def test_asinhe_and_no_sketch():
  vec = np.random.default_rng(3).normal(size=10)
  unit = vec / np.linalg.norm(vec)
  np.testing.assert_allclose(target.gt_target(vec, None, pn='asinhe', gamma=100.0),
                             np.arcsinh(100.0 * unit) / np.arcsinh(100.0), rtol=1e-12)


def test_modality_seeds_are_stable_and_distinct():
  assert target.modality_seed('sdf/sal1') == target.modality_seed('sdf/sal1')
  seeds = {target.modality_seed(m) for m in ('odf/det1', 'odf/det2', 'sdf/sal1', 'off')}
  assert len(seeds) == 4
  assert target.modality_seed('off', base_seed=1) != target.modality_seed('off')
  a, b = target.modality_sketch('odf/det1', 100, 16), target.modality_sketch('odf/det2', 100, 16)
  assert not np.array_equal(a.dense_matrix(), b.dense_matrix())


def test_dimension_mismatch_raises():
  with pytest.raises(ValueError, match='expects 12'):
    target.gt_target(np.ones(10), CountSketch(12, 4, 0))
