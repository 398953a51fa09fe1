"""ViViT backbone: variant decoding, output shapes, parameter counts, dtypes, logical axes, remat."""
import contextlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.models.variants import ViTSize, decode_variant
from halluc_jax.models.vivit import REMAT_POLICIES, HeadsDense, ViViT, sincos_table

TINY = ViTSize(width=32, depth=2, mlp_dim=64, num_heads=4, patch_size=8, tubelet=2)
VIDEO = (2, 4, 16, 16, 3)  # 2 x 2 x 2 = 8 tokens


def _count(tree):
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


class _Classifier(nn.Module):
  """Backbone + linear head, as in a plain video classifier."""
  backbone: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, video):
    return nn.Dense(self.num_classes)(self.backbone(video, train=False))


@contextlib.contextmanager
def _fast_compile():
  """No XLA optimisation passes: compile time dominates on a tiny model."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', previous)


def _shapes(model):
  """Parameter shapes for a 16x224x224 clip, without materialising anything."""
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 224, 224, 3))))


def test_decode_variant():
  s = decode_variant('B/16x2')
  fields = (s.width, s.depth, s.mlp_dim, s.num_heads, s.patch_size, s.tubelet)
  assert fields == (768, 12, 3072, 12, 16, 2)
  assert decode_variant('L/14x4').depth == 24 and decode_variant('L/14x4').tubelet == 4
  assert decode_variant('Ti/8').tubelet == 2
  assert decode_variant('S/16x2', depth=4, mlp_dim=None).depth == 4
  for bad in ('X/16x2', 'B16', 'B/16y2'):
    with pytest.raises(ValueError, match='variant'):
      decode_variant(bad)
  with pytest.raises(ValueError, match='override'):
    decode_variant('B/16x2', widht=3)
  with pytest.raises(ValueError, match='divisible'):
    decode_variant('B/16x2', num_heads=5)


@pytest.mark.parametrize('kind,posemb', [('spatio_temporal', 'learned'), ('factorised', 'sincos')])
def test_output_shapes_and_determinism(kind, posemb):
  model = ViViT(TINY, kind=kind, temporal_depth=1, posemb=posemb, dropout_rate=0.1,
                stochastic_depth=0.5)
  video = jax.random.normal(jax.random.PRNGKey(0), VIDEO)
  variables = jax.jit(lambda v: model.init(jax.random.PRNGKey(1), v, train=False))(video)
  apply = jax.jit(
      lambda v, rng, train: model.apply(variables, v, train=train, rngs={'dropout': rng}),
      static_argnums=2)
  eval_out = apply(video, jax.random.PRNGKey(2), False)
  assert eval_out.shape == (2, TINY.width) and eval_out.dtype == jnp.float32
  np.testing.assert_array_equal(eval_out, apply(video, jax.random.PRNGKey(3), False))
  train_a = apply(video, jax.random.PRNGKey(2), True)
  train_b = apply(video, jax.random.PRNGKey(3), True)
  assert np.isfinite(np.asarray(train_a)).all()
  assert not np.allclose(train_a, train_b)  # dropout / drop path active in training only
  # The final LayerNorm (scale 1, bias 0 at init) makes every pooled vector zero-mean.
  np.testing.assert_allclose(np.asarray(eval_out).mean(-1), 0.0, atol=1e-5)


def test_b16x2_spatio_temporal_parameter_count_matches_videomae_vit_b():
  """ViT-B/16x2, 16x224x224, 400 classes: VideoMAE ViT-B (fixed sincos posemb) has ~87M params."""
  model = _Classifier(ViViT(decode_variant('B/16x2'), posemb='sincos'), 400)
  shapes = _shapes(model)
  d, mlp, depth = 768, 3072, 12
  block = 4 * (d * d + d) + 2 * d * mlp + mlp + d + 2 * 2 * d  # attention, MLP, two LayerNorms
  want = (2 * 16 * 16 * 3 * d + d) + depth * block + 2 * d + (d * 400 + 400)
  assert _count(shapes) == want
  assert 86.0e6 < want < 87.0e6
  learned = _Classifier(ViViT(decode_variant('B/16x2'), posemb='learned'), 400)
  shapes = _shapes(learned)
  assert _count(shapes) == want + 8 * 14 * 14 * d  # one learned vector per token


def test_factorised_parameter_count():
  size = decode_variant('B/16x2')
  model = _Classifier(ViViT(size, kind='factorised', temporal_depth=4, posemb='learned'), 400)
  shapes = _shapes(model)
  d = 768
  block = 4 * (d * d + d) + 2 * d * 3072 + 3072 + d + 4 * d
  want = (2 * 16 * 16 * 3 * d + d) + 16 * block + 2 * (2 * d) + (196 + 8) * d + d * 400 + 400
  assert _count(shapes) == want


def test_bf16_compute_keeps_fp32_params_and_logical_axes():
  model = ViViT(TINY, dtype=jnp.bfloat16)
  video = jnp.ones(VIDEO)
  variables = jax.eval_shape(lambda v: model.init(jax.random.PRNGKey(0), v, train=False), video)
  params = nn.meta.unbox(variables['params'])
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(params))
  out = jax.eval_shape(lambda var, v: model.apply(var, v, train=False), variables, video)
  assert out.dtype == jnp.bfloat16
  specs = nn.get_partition_spec(variables)['params']
  block = specs['encoder']['block_00']
  assert tuple(block['attention']['query']['kernel']) == ('embed', 'heads', 'kv')
  assert tuple(block['attention']['out']['kernel']) == ('heads', 'kv', 'embed')
  assert tuple(block['mlp']['fc1']['kernel']) == ('embed', 'mlp')
  assert tuple(block['mlp']['fc2']['kernel']) == ('mlp', 'embed')
  assert tuple(specs['posemb']['pos_embedding']) == (None, 'length', 'embed')


def test_sincos_table_and_bad_inputs():
  table = sincos_table(5, 6)
  np.testing.assert_allclose(table[0], [0, 1, 0, 1, 0, 1], atol=1e-7)
  np.testing.assert_allclose(table[3, 0], np.sin(3.0), rtol=1e-6)
  np.testing.assert_allclose(table[3, 3], np.cos(3.0 / 10000 ** (2 / 6)), rtol=1e-6)
  model = ViViT(TINY)
  with pytest.raises(ValueError, match='tubelets'):
    model.init(jax.random.PRNGKey(0), jnp.ones((1, 3, 16, 16, 3)), train=False)
  with pytest.raises(ValueError, match=r'\[B, T, H, W, C\]'):
    model.init(jax.random.PRNGKey(0), jnp.ones((4, 16, 16, 3)), train=False)


def test_heads_dense_matches_dense_general():
  """Same parameter shapes, initial values and outputs as the DenseGeneral it replaced, so
  checkpoints from before the change load and train the same."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 32))
  init = nn.initializers.xavier_uniform()  # what the attention's DenseGenerals used
  pairs = ((HeadsDense(32, 4, True), nn.DenseGeneral((4, 8), kernel_init=init), x),
           (HeadsDense(32, 4, False), nn.DenseGeneral(32, axis=(-2, -1), kernel_init=init),
            x.reshape(2, 5, 4, 8)))
  for ours, reference, inputs in pairs:
    ours_vars = nn.meta.unbox(ours.init(jax.random.PRNGKey(1), inputs))
    ref_vars = reference.init(jax.random.PRNGKey(1), inputs)
    ref_vars = {'params': {'kernel': ref_vars['params']['kernel'],
                           'bias': jax.random.normal(jax.random.PRNGKey(2),
                                                     ref_vars['params']['bias'].shape)}}
    np.testing.assert_array_equal(ours_vars['params']['kernel'], ref_vars['params']['kernel'])
    assert ours_vars['params']['bias'].shape == ref_vars['params']['bias'].shape
    np.testing.assert_allclose(ours.apply(ref_vars, inputs), reference.apply(ref_vars, inputs),
                               rtol=1e-5, atol=1e-6)


def test_remat_gives_the_same_loss_and_gradients():
  """Rematerialisation changes what the backward pass stores, never the numbers (dropout and
  drop path included: the recomputed forward draws the same masks). Both encoder layouts build
  their blocks through `block_class`, so one layout covers the switch."""
  video = jax.random.normal(jax.random.PRNGKey(0), VIDEO)

  def loss_and_grads(remat):
    model = ViViT(TINY, dropout_rate=0.2, stochastic_depth=0.5, remat=remat)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(1), video, train=False))

    def loss(p):
      out = model.apply(p, video, train=True, rngs={'dropout': jax.random.PRNGKey(2)})
      return jnp.mean(jnp.square(out - 0.3))
    with _fast_compile():
      return params, jax.jit(jax.value_and_grad(loss))(params)

  ref_params, (ref_loss, ref_grads) = loss_and_grads('none')
  for remat in set(REMAT_POLICIES) - {'none'}:
    params, (loss, grads) = loss_and_grads(remat)
    assert jax.tree.structure(params) == jax.tree.structure(ref_params)  # same checkpoints
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), grads,
                 ref_grads)
  assert float(optax_norm(ref_grads)) > 0


def optax_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def test_unknown_remat_policy():
  with pytest.raises(ValueError, match='remat'):
    ViViT(TINY, remat='everything').init(jax.random.PRNGKey(0), jnp.ones(VIDEO), train=False)
