"""ViViT backbone: variant decoding, output shapes, parameter counts, dtypes, logical axes, remat."""
import contextlib
import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.models import conv3d
from halluc_jax.models import vivit
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
  train: bool = False

  @nn.compact
  def __call__(self, video):
    return nn.Dense(self.num_classes)(self.backbone(video, train=self.train))


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


# ---------------------------------------------------------------------------------------------
# Tubelet stems: 'patch' (linear) and 'conv' (models/vivit.py ConvStem).
# ---------------------------------------------------------------------------------------------
def _param_paths(tree):
  return sorted(jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree))


def test_patch_stem_parameters_unchanged():
  """The default stem keeps every parameter path and shape that checkpoints written before the
  stem option hold (`tubelet_embed` at the top level, nothing added), so they still load."""
  variables = jax.eval_shape(
      lambda: ViViT(TINY).init(jax.random.PRNGKey(0), jnp.ones(VIDEO), train=False))
  assert set(variables) == {'params'}
  params = nn.meta.unbox(variables['params'])
  want = ["['tubelet_embed']['kernel']", "['tubelet_embed']['bias']",
          "['posemb']['pos_embedding']", "['fc_norm']['scale']", "['fc_norm']['bias']"]
  for i in range(TINY.depth):
    block = f"['encoder']['block_{i:02d}']"
    want += [f"{block}['attention']['{m}']['{p}']" for m in ('query', 'key', 'value', 'out')
             for p in ('kernel', 'bias')]
    want += [f"{block}['mlp']['{m}']['{p}']" for m in ('fc1', 'fc2') for p in ('kernel', 'bias')]
    want += [f"{block}['{m}']['{p}']" for m in ('norm1', 'norm2') for p in ('scale', 'bias')]
  assert _param_paths(params) == sorted(want)
  assert params['tubelet_embed']['kernel'].shape == (2, 8, 8, 3, 32)
  explicit = nn.meta.unbox(ViViT(TINY, stem='patch').init(
      jax.random.PRNGKey(0), jnp.ones(VIDEO), train=False))
  implicit = nn.meta.unbox(ViViT(TINY).init(jax.random.PRNGKey(0), jnp.ones(VIDEO), train=False))
  jax.tree.map(np.testing.assert_array_equal, explicit, implicit)  # same initial values too


def test_stem_settings_reach_the_model_from_the_config():
  import runpy  # pylint: disable=g-import-not-at-top
  from halluc_jax.models import hallucinator  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  b = runpy.run_path(os.path.join(repo, 'configs', 'default.py'))['get_config']().model.backbone
  model = hallucinator.build_backbone(b)
  assert (model.stem, model.stem_channels, model.stem_norm, model.stem_time_taps) == (
      b.stem, tuple(b.stem_channels), b.stem_norm, b.stem_time_taps)
  b.stem, b.stem_channels, b.stem_norm, b.stem_time_taps = 'conv', (4, 8), 'layer', 3
  model = hallucinator.build_backbone(b)
  assert (model.stem, model.stem_channels, model.stem_norm, model.stem_time_taps) == (
      'conv', (4, 8), 'layer', 3)
  del b['stem'], b['stem_channels'], b['stem_norm'], b['stem_time_taps']
  assert hallucinator.build_backbone(b).stem == 'patch'  # older configs: the patch stem


@pytest.mark.parametrize('size,channels,video', [
    (TINY, (), (2, 4, 16, 16, 3)),  # patch 8: three stride-2 convs
    (TINY, (16, 32), (1, 8, 32, 24, 3)),  # first conv of stride 4, non-square frames
    (ViTSize(32, 1, 64, 4, 16, 1), (16, 32), (2, 3, 32, 48, 3)),  # tubelet 1, odd T
    (ViTSize(32, 1, 64, 4, 4, 4), (8, 32), (1, 8, 8, 8, 3)),  # tubelet 4
])
def test_conv_stem_token_grid_equals_patch_stem(size, channels, video):
  x = jnp.ones(video)
  grids = {}
  for stem in ('patch', 'conv'):
    model = ViViT(size, stem=stem, stem_channels=channels)
    variables = jax.eval_shape(lambda m=model: m.init(jax.random.PRNGKey(0), x, train=False))
    out = jax.eval_shape(lambda v, m=model: m.apply(v, x, train=False), variables)
    assert out.shape == (video[0], size.width)
    grids[stem] = nn.meta.unbox(variables['params'])['posemb']['pos_embedding'].shape
  b, t, h, w, _ = video
  assert grids['conv'] == grids['patch'] == (
      1, (t // size.tubelet) * (h // size.patch_size) * (w // size.patch_size), size.width)


def test_conv_stem_default_channels_and_bad_settings():
  assert vivit.conv_stem_channels(decode_variant('Ti/16x2')) == (16, 32, 64, 128)
  assert vivit.conv_stem_channels(decode_variant('Ti/8x2')) == (16, 32, 64)
  assert vivit.conv_stem_channels(TINY) == (8, 16, 32)
  assert vivit.conv_stem_channels(TINY, (5, 6)) == (5, 6)
  x = jnp.ones(VIDEO)
  for kwargs, match in (({'stem': 'convnext'}, 'stem'), ({'stem': 'conv', 'stem_norm': 'rms'},
                                                         'norm'),
                        ({'stem': 'conv', 'stem_channels': (8,) * 5}, 'patch size')):
    with pytest.raises(ValueError, match=match):
      ViViT(TINY, **kwargs).init(jax.random.PRNGKey(0), x, train=False)


@pytest.mark.parametrize('kernel,strides', [((3, 3, 3), (2, 2, 2)), ((1, 3, 3), (1, 2, 2)),
                                            ((3, 3, 3), (1, 2, 2)), ((5, 5, 5), (4, 4, 4)),
                                            ((3, 1, 1), (1, 1, 1))])
def test_conv3d_per_tap_equals_lax_conv3d(kernel, strides):
  """The conv stem's per-temporal-tap 2-D convs compute lax's 'SAME' conv3d (values and
  gradients), odd sizes included."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 15, 12, 3))
  k = jax.random.normal(jax.random.PRNGKey(1), kernel + (3, 5))

  def ref(x, k, strides):
    return jax.lax.conv_general_dilated(x, k, strides, 'SAME',
                                        dimension_numbers=('NDHWC', 'DHWIO', 'NDHWC'))
  got, want = conv3d.conv3d_per_tap(x, k, strides), ref(x, k, strides)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
  cot = jax.random.normal(jax.random.PRNGKey(2), want.shape)
  grads = [jax.grad(lambda a, b, f=f: jnp.sum(f(a, b, strides) * cot), argnums=(0, 1))(x, k)
           for f in (conv3d.conv3d_per_tap, ref)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3), *grads)


@pytest.mark.parametrize('norm', ['layer', 'batch'])
def test_conv_stem_gradients_and_logical_axes(norm):
  model = ViViT(TINY, stem='conv', stem_norm=norm, dropout_rate=0.1, stochastic_depth=0.2)
  video = jax.random.normal(jax.random.PRNGKey(0), VIDEO)
  variables = model.init(jax.random.PRNGKey(1), video, train=False)
  specs = nn.get_partition_spec(variables)['params']['conv_stem']
  for i in range(3):
    assert tuple(specs[f'conv_{i}']['kernel']) == vivit._CONV_KERNEL
    assert tuple(specs[f'norm_{i}']['scale']) == ('conv_out',)
  assert tuple(specs['proj']['kernel']) == vivit._CONV_KERNEL[:-1] + ('embed',)
  assert tuple(specs['proj']['bias']) == ('embed',)
  variables = nn.meta.unbox(variables)
  assert ('batch_stats' in variables) == (norm == 'batch')
  stats = variables.get('batch_stats', {})

  def loss(params):
    out, new = model.apply({'params': params, **({'batch_stats': stats} if stats else {})},
                           video, train=True, rngs={'dropout': jax.random.PRNGKey(2)},
                           mutable=['batch_stats'])
    return jnp.mean(jnp.square(out - 0.3)), new

  with _fast_compile():
    (value, new), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables['params'])
  assert np.isfinite(float(value))
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
  for i in range(3):
    assert float(jnp.abs(grads['conv_stem'][f'conv_{i}']['kernel']).sum()) > 0
  if norm == 'batch':  # training updates the running averages, eval reads them
    assert not np.allclose(new['batch_stats']['conv_stem']['norm_0']['mean'], 0)


def test_conv_stem_vivit_learns_tiny_objects_dataset():
  """32 Adam steps of the chosen layout (conv stem with BatchNorm, configs/default.py) on
  48 clips of the 'objects' classes (4 per class, rendered by the dataset generator at 32 px,
  8 frames; no mp4 round trip), in shuffled batches of 12, take the training loss well below
  chance, ln 12 = 2.48. It measures fitting the training clips, not generalisation."""
  # pylint: disable=g-import-not-at-top
  import optax
  from halluc_jax.data.synthetic import objects as synthetic_objects
  from halluc_jax.data.synthetic import render as synthetic_render
  # pylint: enable=g-import-not-at-top
  names = synthetic_objects.CLASS_NAMES
  clips, labels = [], []
  for i in range(4 * len(names)):
    rng = np.random.default_rng(np.random.SeedSequence([7, i]))
    frames, _ = synthetic_render.render_clip(names[i % len(names)], rng, 32, 8,
                                             synthetic_objects.actor_tracks)
    clips.append((frames / 255.0 - 0.45) / 0.225)
    labels.append(i % len(names))
  video, labels = jnp.asarray(np.stack(clips), jnp.float32), jnp.asarray(labels)
  size = ViTSize(width=48, depth=1, mlp_dim=96, num_heads=4, patch_size=8, tubelet=2)
  model = _Classifier(ViViT(size, stem='conv', stem_norm='batch'), len(names), train=True)
  variables = nn.meta.unbox(model.init(jax.random.PRNGKey(0), video[:2]))
  tx = optax.adam(2e-3)

  @jax.jit
  def step(params, stats, opt_state, idx):
    def loss_fn(p):
      logits, new = model.apply({'params': p, 'batch_stats': stats}, video[idx],
                                mutable=['batch_stats'])
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels[idx]).mean(), new
    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new['batch_stats'], opt_state, loss

  params, stats = variables['params'], variables['batch_stats']
  opt_state = tx.init(params)
  losses, order = [], np.random.default_rng(0)
  for _ in range(8):  # epochs
    for idx in order.permutation(len(labels)).reshape(4, 12):
      params, stats, opt_state, loss = step(params, stats, opt_state, idx)
      losses.append(float(loss))
  assert np.isfinite(losses).all()
  assert abs(losses[0] - np.log(12)) < 1.0  # starts near chance
  # Measured: 1.08 (0.43 ln 12) over the last 5 of the 32 steps.
  assert np.mean(losses[-5:]) < 0.6 * np.log(12), losses


_MESH_SCRIPT = textwrap.dedent("""
    import os, runpy, sys
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
    os.environ['JAX_PLATFORMS'] = 'cpu'
    import flax.linen as nn, jax, jax.numpy as jnp, ml_collections, numpy as np
    from halluc_jax import sharding
    from halluc_jax.models.variants import ViTSize
    from halluc_jax.models.vivit import ViViT
    config = runpy.run_path(sys.argv[1])['get_config']()
    rules = sharding.logical_rules(config.mesh)
    mesh = sharding.make_mesh(ml_collections.ConfigDict(
        {'shape': {'data': 2, 'fsdp': 2, 'tensor': 2}}))
    model = ViViT(ViTSize(32, 1, 64, 4, 8, 2), stem='conv', stem_norm='batch')
    video = jax.random.normal(jax.random.PRNGKey(0), (8, 4, 16, 16, 3))
    boxed = model.init(jax.random.PRNGKey(1), video, train=False)
    variables = nn.meta.unbox(boxed)

    def loss(params, stats, video):
      out, new = model.apply({'params': params, 'batch_stats': stats}, video, train=True,
                             mutable=['batch_stats'])
      return jnp.mean(jnp.square(out - 0.3)), new['batch_stats']
    grad = jax.value_and_grad(loss, has_aux=True)
    (ref_loss, ref_stats), ref_grads = jax.jit(grad)(variables['params'],
                                                     variables['batch_stats'], video)
    with sharding.context(mesh, rules):
      shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed), mesh, rules)
      params = jax.device_put(variables['params'], shardings['params'])
      stats = jax.device_put(variables['batch_stats'], sharding.replicated(mesh))
      batch = jax.device_put(video, sharding.batch_sharding(mesh))
      (loss_, stats_), grads = jax.jit(grad)(params, stats, batch)
    # The rules really split the encoder and replicate the stem's small conv kernels.
    assert tuple(params['encoder']['block_00']['mlp']['fc1']['kernel'].sharding.spec) == (
        'fsdp', 'tensor')
    assert not any(params['conv_stem']['conv_1']['kernel'].sharding.spec)
    assert tuple(params['conv_stem']['proj']['kernel'].sharding.spec)[-1] == 'fsdp'
    np.testing.assert_allclose(loss_, ref_loss, rtol=1e-5)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    jax.tree.map(close, grads, ref_grads)
    jax.tree.map(close, stats_, ref_stats)
    print('MESH_OK', len(jax.devices()))
""")


def test_conv_stem_on_an_8_device_mesh_matches_one_device():
  """The conv stem (BatchNorm included: its batch statistics span the whole split batch) under
  a (data 2, fsdp 2, tensor 2) mesh of fake CPU devices and configs/default.py's logical rules
  gives one device's loss, gradients and running averages. A subprocess: the device count is
  fixed when XLA starts."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  done = subprocess.run([sys.executable, '-c', _MESH_SCRIPT,
                         os.path.join(repo, 'configs', 'default.py')],
                        env=env, capture_output=True, text=True, timeout=300, cwd=repo)
  assert 'MESH_OK 8' in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize('size,clip', [(decode_variant('Ti/16x2', depth=1), (1, 16, 64, 64, 3)),
                                       (ViTSize(32, 1, 64, 4, 16, 1), (1, 3, 32, 48, 3))])
def test_conv_stem_macs_agree_with_xla(size, clip):
  """The analytic count (the dry-run planner's, dry_run.analytic_backbone_flops) is XLA's count
  less the norms, GELUs and the bias it leaves out."""
  from halluc_jax import dry_run  # pylint: disable=g-import-not-at-top
  stem = vivit.ConvStem(size.width, size.patch_size, size.tubelet, vivit.conv_stem_channels(size))
  x = jax.ShapeDtypeStruct(clip, jnp.float32)
  variables = jax.eval_shape(lambda: stem.init(jax.random.PRNGKey(0), jnp.zeros(clip),
                                               train=False))
  fwd = jax.jit(lambda v, x: stem.apply(v, x, train=False))
  xla = dry_run.cost_flops(fwd.lower(variables, x).compile())
  assert 1.0 <= xla / (2 * vivit.conv_stem_macs(size, *clip[1:4])) < 1.25
