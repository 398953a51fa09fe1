"""Stream heads, Eq. 22 weights, both fusion modes and PredNet, against explicit numpy maths."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.descriptors.sketch import CountSketch
from halluc_jax.models.streams import (Fusion, HeadSpec, PredNet, StreamHead, fusion_levels,
                                       stream_weights)


def _init_apply(module, *args, **kwargs):
  variables = module.init(jax.random.PRNGKey(0), *args, **kwargs)
  return nn.meta.unbox(variables), module.apply(variables, *args, **kwargs)


def test_stream_head_asinhe_default():
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 10))
  variables, out = _init_apply(StreamHead(dim=8), x)
  fc = variables['params']['fc']
  y = np.asarray(x) @ np.asarray(fc['kernel']) + np.asarray(fc['bias'])
  np.testing.assert_allclose(out, np.arcsinh(100 * y) / np.arcsinh(100), rtol=1e-5, atol=1e-6)
  assert out.shape == (3, 8) and out.dtype == jnp.float32


def test_stream_head_normalises_each_sketch_separately():
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 6))
  head = StreamHead(dim=12, spec=HeadSpec(num_sketches=3, pn='sigme', pn_params=(('eta', 5.0),)))
  variables, out = _init_apply(head, x)
  fc = variables['params']['fc']
  y = (np.asarray(x) @ np.asarray(fc['kernel']) + np.asarray(fc['bias'])).reshape(2, 3, 4)
  norm = np.linalg.norm(y, axis=-1, keepdims=True)
  want = np.tanh(5.0 * y / (2 * (norm + 1e-6))).reshape(2, 12)
  np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="'odf'.*multiple"):
    StreamHead(dim=10, spec=HeadSpec(num_sketches=3), name='odf').init(jax.random.PRNGKey(0), x)


def test_stream_weights_eq22():
  np.testing.assert_allclose(stream_weights([0.2, 0.5, 0.9], beta=0.0), [1 / 3] * 3, rtol=1e-6)
  w = stream_weights([0.4, 0.8], beta=1.0, rho=0.1)
  np.testing.assert_allclose(w, [1 / 3, 2 / 3], rtol=1e-6)
  sharp = stream_weights([0.5, 0.9], beta=50.0, rho=1e-30)
  assert sharp[1] > 0.999  # winner takes all
  floored = stream_weights([0.5, 0.9], beta=5.0, rho=0.1)  # 0.5^5 is floored at rho, 0.9^5 is not
  np.testing.assert_allclose(floored, np.array([0.1, 0.9 ** 5]) / (0.1 + 0.9 ** 5), rtol=1e-5)
  with pytest.raises(ValueError, match='positive'):
    stream_weights([0.5, 0.0], beta=1.0)


def test_fusion_levels_groups_and_haf_default():
  groups = {'det1': 'odf', 'det2': 'odf', 'sal1': 'sdf'}
  levels, haf = fusion_levels(['det1', 'det2', 'flow', 'sal1'], groups,
                          {'det1': 0.4, 'det2': 0.6, 'flow': 0.7})
  assert levels == (('flow', (('flow', 0.7),), 0.7),
                  ('odf', (('det1', 0.4), ('det2', 0.6)), 0.5),
                  ('sdf', (('sal1', 1.0),), 1.0))
  assert haf == pytest.approx(1 / 4)


def _streams(dims, batch=3, seed=3):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(dims) + 1)
  streams = {n: jax.random.normal(k, (batch, d)) for k, (n, d) in zip(keys, sorted(dims.items()))}
  return streams, jax.random.normal(keys[-1], (batch, 4))


def test_concat_sketch_fusion_is_p_tot_times_concatenation():
  streams, haf = _streams({'b': 5, 'a': 3})
  out = Fusion('concat_sketch', out_dim=7, sketch_seed=11).apply({}, streams, haf)
  concat = np.concatenate([streams['a'], streams['b'], haf], axis=-1)  # sorted names, then HAF
  p_tot = CountSketch(12, 7, 11).dense_matrix()
  np.testing.assert_allclose(out, concat @ p_tot.T, rtol=1e-5, atol=1e-6)
  plain = Fusion('concat_sketch', out_dim=0).apply({}, streams, haf)
  np.testing.assert_allclose(plain, concat)


def test_weighted_mean_fusion_two_levels():
  names = {'det1': 4, 'det2': 4, 'flow': 4}
  streams, haf = _streams(names)
  groups, scores = {'det1': 'odf', 'det2': 'odf'}, {'det1': 0.2, 'det2': 0.6, 'flow': 0.9}
  levels, haf_score = fusion_levels(sorted(names), groups, scores)
  fusion = Fusion('weighted_mean', levels=levels, haf_score=haf_score, beta=2.0, rho=0.01)
  out = fusion.apply({}, streams, haf)

  def weights(s):
    raw = np.maximum(np.asarray(s) ** 2.0, 0.01)
    return raw / raw.sum()

  w_det = weights([0.2, 0.6])
  odf = w_det[0] * streams['det1'] + w_det[1] * streams['det2']
  w_top = weights([0.9, 0.4, 1 / 3])  # groups sorted: flow, odf (mean score 0.4); then HAF
  want = w_top[0] * streams['flow'] + w_top[1] * odf + w_top[2] * haf
  np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='one dim'):
    Fusion('weighted_mean', levels=levels).apply({}, dict(streams, flow=jnp.ones((3, 5))), haf)


def test_prednet_shapes_and_batch_stats():
  x = jax.random.normal(jax.random.PRNGKey(4), (6, 9)) * 3 + 1
  model = PredNet(num_classes=5)
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  logits, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  assert logits.shape == (6, 5) and logits.dtype == jnp.float32
  mean = updates['batch_stats']['bn']['mean']
  # Momentum 0.9 from a zero running mean.
  np.testing.assert_allclose(mean, 0.1 * np.asarray(x).mean(0), rtol=1e-4, atol=1e-6)


def test_stream_head_input_batchnorm_makes_it_scale_free():
  # Pooled features that barely vary across videos around a large shared vector, as a trained
  # ViViT's LayerNorm'd features do: the plain head's output follows the tiny variation, the
  # batch-normalised one sees it at unit scale.
  rng = np.random.default_rng(0)
  shared = rng.normal(size=(1, 16))
  x = jnp.asarray(shared + 0.01 * rng.normal(size=(32, 16)), jnp.float32)
  outputs = {}
  for norm in ('none', 'batch'):
    head = StreamHead(8, HeadSpec(pn='none', input_norm=norm))
    variables = head.init(jax.random.PRNGKey(0), x, train=False)
    out, _ = head.apply(variables, x, train=True, mutable=['batch_stats'])
    outputs[norm] = np.asarray(out)
  assert outputs['none'].std(0).mean() < 0.05
  assert outputs['batch'].std(0).mean() > 0.3
  # Its statistics live in batch_stats, threaded through both passes like PredNet's.
  head = StreamHead(8, HeadSpec(pn='none', input_norm='batch'))
  variables = head.init(jax.random.PRNGKey(0), x, train=False)
  assert set(variables['batch_stats']['input_norm']) == {'mean', 'var'}
  with pytest.raises(ValueError, match='input_norm'):
    StreamHead(8, HeadSpec(input_norm='layer')).init(jax.random.PRNGKey(0), x, train=False)
