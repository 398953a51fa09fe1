"""I3D backbone: variants, shapes, the published size and cost, the I3D head form, and BatchNorm
state through the trainer's step (alternating passes, gradient accumulation, eval, frozen)."""
import functools
import pathlib
import runpy

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.perf import flops as flops_lib
from halluc_jax import setup as setup_lib
from halluc_jax import sharding
from halluc_jax.descriptors.power_norm import power_normalize
from halluc_jax.models import i3d
from halluc_jax.models.hallucinator import build_model
from halluc_jax.models.streams import HeadSpec, StreamHead
from halluc_jax.models.variants import I3DSize, decode_i3d_variant

import configs_for_tests

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = 'w0.125/111'  # 1/8 width, one block per stage: compiles and runs in seconds
# The published network, written out here independently of models/i3d.py: stem convs
# (kernel volume, in, out) and Inception blocks (in, [b0, b1a, b1b, b2a, b2b, b3b]).
PUBLISHED_STEM = ((343, 3, 64), (1, 64, 64), (27, 64, 192))
PUBLISHED_BLOCKS = (
    (192, (64, 96, 128, 16, 32, 32)), (256, (128, 128, 192, 32, 96, 64)),
    (480, (192, 96, 208, 16, 48, 64)), (512, (160, 112, 224, 24, 64, 64)),
    (512, (128, 128, 256, 24, 64, 64)), (512, (112, 144, 288, 32, 64, 64)),
    (528, (256, 160, 320, 32, 128, 128)), (832, (256, 160, 320, 32, 128, 128)),
    (832, (384, 192, 384, 48, 128, 128)))


# No XLA optimisation passes: compile time dominates on these tiny models (conftest.py).
pytestmark = pytest.mark.usefixtures('fast_compilation')


def _count(tree):
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _abstract(model, shape):
  """(abstract variables, abstract output) of `model` on a clip of `shape`, nothing computed."""
  clip = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda v: model.init(jax.random.PRNGKey(0), v, train=False), clip)
  out = jax.eval_shape(lambda var, v: model.apply(var, v, train=False), variables, clip)
  return variables, out


# ---------------------------------------------------------------------------------------------
# Variants, shapes, size and cost.
# ---------------------------------------------------------------------------------------------
def test_decode_i3d_variant():
  assert decode_i3d_variant('full') == I3DSize(1.0, (2, 5, 2)) == decode_i3d_variant('w1/252')
  assert decode_i3d_variant('mini') == I3DSize(0.25, (1, 1, 1))
  assert decode_i3d_variant('w0.5') == I3DSize(0.5, (2, 5, 2))
  assert decode_i3d_variant('w.25/121').blocks == (1, 2, 1)
  assert decode_i3d_variant('full', blocks=(1, 1, 1), width_mult=None).blocks == (1, 1, 1)
  for bad in ('B/16x2', 'w', 'w0.5/25', 'half'):
    with pytest.raises(ValueError, match='variant'):
      decode_i3d_variant(bad)
  for bad in ('w0', 'w1/262', 'w1/052'):
    with pytest.raises(ValueError, match='I3DSize'):
      decode_i3d_variant(bad)
  with pytest.raises(ValueError, match='override'):
    decode_i3d_variant('full', depth=4)
  assert decode_i3d_variant('w0.25').filters(16) == 4 and decode_i3d_variant('w0.1').filters(8) == 1


def test_reduced_stages_keep_their_last_blocks():
  names = [name for kind, name, *_ in i3d.layout(decode_i3d_variant('w1/121'))
           if kind == 'inception']
  assert names == ['Mixed_3c', 'Mixed_4e', 'Mixed_4f', 'Mixed_5c']


@pytest.mark.parametrize('variant,shape,want', [
    ('full', (2, 64, 224, 224, 3), (2, 7, 1024)),  # the paper's 1024 x 7
    ('full', (1, 32, 112, 112, 3), (1, 3, 1024)),  # Mixed_5c 4 x 4 x 4 -> 3 positions
    ('w0.25', (8, 16, 64, 64, 3), (8, 1, 256)),  # CPU clips: Mixed_5c 2 x 2 x 2 -> 1
    ('w0.5/111', (1, 8, 32, 32, 3), (1, 1, 512)),  # T' = 1: window 1
    ('full', (1, 24, 57, 43, 3), (1, 2, 1024)),  # odd sizes: TF 'SAME' rounds up
])
def test_feature_shapes(variant, shape, want):
  size = decode_i3d_variant(variant)
  _, out = _abstract(i3d.I3D(size), shape)
  assert out.shape == want and out.dtype == jnp.float32
  assert i3d.analytic_flops(size, shape[1], shape[2])['feature_shape'] == want[1:]


def test_full_parameter_count():
  """12.29 M without the logits layer (conv kernels + BatchNorm scale and bias); the
  commonly published I3D size is ~12 M (DeepMind's BatchNorm has no scale: 7,280 fewer)."""
  def unit(volume, cin, cout):
    return volume * cin * cout + 2 * cout

  want = sum(unit(*conv) for conv in PUBLISHED_STEM)
  for cin, (b0, b1a, b1b, b2a, b2b, b3b) in PUBLISHED_BLOCKS:
    want += (unit(1, cin, b0) + unit(1, cin, b1a) + unit(27, b1a, b1b) + unit(1, cin, b2a)
             + unit(27, b2a, b2b) + unit(1, cin, b3b))
  variables, _ = _abstract(i3d.I3D(decode_i3d_variant('full')), (1, 64, 224, 224, 3))
  got = _count(variables['params'])
  assert got == want == 12_287_264
  channels = _count(variables['batch_stats']) // 2  # one mean and one var per channel
  assert got - channels == 12_279_984  # the TF layout: offset only
  # pytorch-i3d's names and layout, so its weights map one to one.
  block = nn.meta.unbox(variables['params'])['Mixed_4f']
  assert block['b1b']['conv3d']['kernel'].shape == (3, 3, 3, 160, 320)
  assert set(block) == {'b0', 'b1a', 'b1b', 'b2a', 'b2b', 'b3b'}


def test_full_forward_is_about_108_gmacs():
  """Convolutions of a 64x224x224 clip: 111.2 G multiply-adds counting every kernel tap, the
  jaxpr count equals the layer-table count exactly. XLA's cost analysis, which leaves out taps
  that fall on 'SAME' padding, counts 107.6 G (planner, measured): the published ~108 G."""
  size = decode_i3d_variant('full')
  model = i3d.I3D(size)
  clip = jax.ShapeDtypeStruct((1, 64, 224, 224, 3), jnp.float32)
  variables = jax.eval_shape(lambda v: model.init(jax.random.PRNGKey(0), v, train=False), clip)
  jaxpr = jax.make_jaxpr(lambda var, v: model.apply(var, v, train=False))(variables, clip)
  analytic = i3d.analytic_flops(size, 64, 224)
  assert flops_lib.jaxpr_flops(jaxpr) == analytic['total']
  assert analytic['total'] / 2 == pytest.approx(111.15e9, rel=1e-3)
  assert 105e9 < analytic['total'] / 2 < 115e9


def test_conv_implementations_agree():
  """Per-temporal-tap 2-D convs (CPU) = the native 3-D conv, values and gradients, with TF
  'SAME' padding on odd sizes and strides."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 7, 9, 11, 3)), jnp.float32)
  for kernel, strides in (((7, 7, 7), (2, 2, 2)), ((3, 3, 3), (1, 1, 1)), ((3, 1, 5), (2, 1, 2))):
    convs = {impl: i3d.Conv3D(4, kernel, strides, impl=impl) for impl in ('conv3d', 'per_tap')}
    params = convs['conv3d'].init(jax.random.PRNGKey(1), x)

    def loss(p, v, impl):
      return jnp.sum(jnp.sin(convs[impl].apply(p, v)))
    ref = convs['conv3d'].apply(params, x)
    assert ref.shape == (2,) + tuple(-(-n // s) for n, s in zip(x.shape[1:4], strides)) + (4,)
    np.testing.assert_allclose(convs['per_tap'].apply(params, x), ref, rtol=1e-5, atol=1e-5)
    grads = [jax.grad(loss, argnums=(0, 1))(params, x, impl) for impl in ('conv3d', 'per_tap')]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), *grads)
  with pytest.raises(ValueError, match='impl'):
    i3d.Conv3D(4, impl='fft').init(jax.random.PRNGKey(0), x)


def test_logical_axes_and_bf16():
  model = i3d.I3D(decode_i3d_variant(TINY), dtype=jnp.bfloat16)
  variables, out = _abstract(model, (1, 8, 32, 32, 3))
  assert out.dtype == jnp.bfloat16
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nn.meta.unbox(variables)))
  specs = nn.get_partition_spec(variables)['params']
  unit = specs['Conv3d_1a_7x7']
  assert tuple(unit['conv3d']['kernel']) == ('conv_t', 'conv_h', 'conv_w', 'conv_in', 'conv_out')
  assert tuple(unit['bn']['scale']) == tuple(unit['bn']['bias']) == ('conv_out',)
  # Every logical name the backbone uses has a rule in the default config.
  rules = dict(runpy.run_path(str(REPO / 'configs' / 'default.py'))['get_config']()
               .mesh.logical_axis_rules)
  names = {n for spec in jax.tree.leaves(specs, is_leaf=lambda s: isinstance(s, tuple))
           for n in spec if n}
  assert names <= set(rules), names - set(rules)


def test_remat_gives_the_same_loss_gradients_and_statistics():
  """On one Inception block (what `remat` wraps); the whole network keeps its parameter tree."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 8, 8, 16))
  filters = (4, 4, 8, 2, 4, 4)

  def run(remat):
    block = i3d.inception_class(remat)(filters)
    variables = nn.meta.unbox(block.init(jax.random.PRNGKey(1), x, False))

    def loss(params):
      out, new = block.apply({**variables, 'params': params}, x, True, mutable=['batch_stats'])
      return jnp.mean(jnp.square(out - 0.3)), new['batch_stats']
    return variables, jax.jit(jax.value_and_grad(loss, has_aux=True))(variables['params'])

  ref_vars, ((ref_loss, ref_stats), ref_grads) = run('none')
  variables, ((loss, stats), grads) = run('full')
  assert jax.tree.structure(variables) == jax.tree.structure(ref_vars)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  _assert_close(stats, ref_stats, rtol=1e-6, atol=1e-7)
  _assert_close(grads, ref_grads, rtol=1e-4, atol=1e-7)
  shapes = [jax.tree.map(np.shape, _abstract(i3d.I3D(decode_i3d_variant(TINY), remat=r),
                                             (1, 8, 32, 32, 3))[0]) for r in ('none', 'full')]
  assert shapes[0] == shapes[1]  # same checkpoints with and without remat
  with pytest.raises(ValueError, match='remat'):
    i3d.inception_class('all')


# ---------------------------------------------------------------------------------------------
# The I3D head form (Fig. 3a) and the full model.
# ---------------------------------------------------------------------------------------------
def test_stream_head_on_a_temporal_map():
  """[B, T'', C] -> conv spanning all T'' positions with C filters -> ReLU -> FC(d) -> PN."""
  b, t, c, dim = 3, 7, 16, 8
  x = jax.random.normal(jax.random.PRNGKey(0), (b, t, c))
  head = StreamHead(dim, HeadSpec(num_sketches=2, pn='asinhe', pn_params=(('gamma', 100.0),)))
  params = nn.meta.unbox(head.init(jax.random.PRNGKey(1), x))['params']
  assert set(params) == {'temporal_conv', 'fc'}
  assert params['temporal_conv']['kernel'].shape == (t, c, c)  # one window over all of T''
  assert params['fc']['kernel'].shape == (c, dim)
  conv = params['temporal_conv']
  hidden = jnp.einsum('btc,tcf->bf', x, conv['kernel']) + conv['bias']
  assert float(jnp.min(hidden)) < 0  # the ReLU below really clips something
  fc = jnp.maximum(hidden, 0) @ params['fc']['kernel'] + params['fc']['bias']
  want = power_normalize(fc.reshape(b, 2, 4), 'asinhe', gamma=100.0).reshape(b, dim)
  got = head.apply({'params': params}, x)
  assert got.shape == (b, dim)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # The pooled-vector path is unchanged: one Dense named 'fc'.
  flat = head.init(jax.random.PRNGKey(1), x[:, 0])['params']
  assert set(flat) == {'fc'}
  with pytest.raises(ValueError, match=r'\[B, D\] or \[B, T, C\]'):
    head.init(jax.random.PRNGKey(1), x[None])


def tiny_config(**overrides):
  """configs/i3d.py:tiny (the TINY variant on 8x32x32 clips), two 8-dim streams, no data."""
  return configs_for_tests.load('i3d', 'tiny', {
      'data.aux_dir': '', 'data.num_classes': 5, 'model.streams.dims': {'odf': 8, 'sdf': 8},
      'model.streams.use_groups': (),  # the row's three groups: these two streams only
      'model.fusion.out_dim': 24, 'model.cenet.hidden_dim': 8, 'optim.schedule': 'constant',
      'optim.warmup_steps': 0, **overrides})


def test_config_file_and_full_model_outputs():
  config = runpy.run_path(str(REPO / 'configs' / 'i3d.py'))['get_config']()
  assert config.model.backbone.name == 'i3d' and config.model.backbone.variant == 'mini'
  model = build_model(config.model, {'odf': 16}, 12)
  variables, out = _abstract(model, (8, 16, 64, 64, 3))
  assert out['features'].shape == (8, 1, 256) and out['hallucinated']['odf'].shape == (8, 16)
  assert out['logits'].shape == (8, 12)
  assert set(variables['batch_stats']) == {'backbone', 'prednet', 'cenet'}
  # 64 frames: T'' = 7, and every head's conv spans all 7 positions.
  model = build_model(tiny_config().model, {'odf': 8}, 5)
  variables, out = _abstract(model, (2, 64, 32, 32, 3))
  assert out['features'].shape == (2, 7, 128)
  kernel = variables['params']['streams']['odf']['temporal_conv']['kernel']
  assert nn.meta.unbox(kernel).shape == (7, 128, 128)
  assert nn.meta.unbox(variables['params']['haf']['temporal_conv']['kernel']).shape == (7, 128, 128)
  with pytest.raises(ValueError, match='backbone.name'):
    build_model(tiny_config(**{'model.backbone.name': 'resnet'}).model, {}, 5)


# ---------------------------------------------------------------------------------------------
# BatchNorm state through the trainer's step.
# ---------------------------------------------------------------------------------------------
def _batch(config, seed=0):
  rng = np.random.default_rng(seed)
  d = config.data
  b = int(d.batch_size)
  # Clips of unlike offset and scale, so batch statistics differ clearly between subsets.
  video = (rng.standard_normal((b, d.num_frames, d.crop_size, d.crop_size, 3))
           * rng.uniform(0.5, 2.0, (b, 1, 1, 1, 1)) + rng.uniform(-1, 1, (b, 1, 1, 1, 1)))
  return {'video': video.astype(np.float32),
          'label': rng.integers(0, d.num_classes, b).astype(np.int32),
          'valid': np.ones(b, np.float32), 'video_index': np.arange(b, dtype=np.int32),
          'aux': {n: rng.standard_normal((b, m)).astype(np.float32)
                  for n, m in config.model.streams.dims.items()},
          'aux_mask': {n: np.ones(b, np.float32) for n in config.model.streams.dims},
          'aux_bad': np.zeros(b, np.int32)}


def _run(config, accum_steps=(1,)):
  """(setup, initial state on the host, {N: state after one step with N micro-batches}, batch)
  on the host; each step starts from the same initial state."""
  setup = setup_lib.Setup(config, sharding.make_mesh(config.mesh), abstract=True)
  batch = _batch(config)
  initial, after = None, {}
  for n in accum_steps:
    state = setup.init_state()
    initial = jax.device_get(state)  # before the step donates it
    with setup.context():
      state, metrics = setup.jit_train_step(n)(state, batch)
    assert float(metrics['finite']) == 1.0
    after[n] = jax.device_get(state)
  return setup, initial, after, batch


@pytest.fixture(scope='module')
def lr0_run():
  """Learning rate 0: the step keeps the parameters, so every forward pass of the step sees the
  same batch statistics, and the running averages' updates can be counted exactly."""
  return _run(tiny_config(**{'optim.lr': 0.0}), accum_steps=(1, 2))


@pytest.fixture(scope='module')
def trained_run():
  return _run(tiny_config())


def _one_update(setup, state, video):
  """The backbone's running statistics after one training forward from `state` on `video`."""
  fn = jax.jit(lambda var, v: setup.model.apply(
      var, v, train=True, mutable=['batch_stats'])[1]['batch_stats']['backbone'])
  return jax.device_get(fn({'params': state.params, 'batch_stats': state.batch_stats}, video))


def _assert_close(a, b, **kwargs):
  jax.tree.map(functools.partial(np.testing.assert_allclose, **kwargs), a, b)


def _max_diff(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_alternating_step_updates_backbone_statistics_once(lr0_run):
  """Both passes normalise with the same batch statistics here: the backbone's running averages
  after the step are exactly one EMA update (the 'cls' pass's), not two."""
  setup, initial, after, batch = lr0_run
  _assert_close(after[1].params, initial.params, rtol=0, atol=0)
  once = _one_update(setup, initial, batch['video'])
  twice = _one_update(setup, initial.replace(batch_stats={**initial.batch_stats,
                                                           'backbone': once}), batch['video'])
  _assert_close(after[1].batch_stats['backbone'], once, rtol=1e-5, atol=1e-6)
  assert _max_diff(once, twice) > 1e-3  # one update is told apart from two
  assert _max_diff(once, initial.batch_stats['backbone']) > 1e-3  # the stats moved


def test_gradient_accumulation_averages_the_micro_batch_updates(lr0_run):
  """N = 2 micro-batches (rows k, k + 2): the running statistics are the mean of the two
  micro-batches' one-step updates, train_step's documented rule."""
  setup, initial, after, batch = lr0_run
  updates = [_one_update(setup, initial, batch['video'][k::2]) for k in range(2)]
  want = jax.tree.map(lambda a, b: (a + b) / 2, *updates)
  _assert_close(after[2].batch_stats['backbone'], want, rtol=1e-5, atol=1e-6)
  assert _max_diff(updates[0], updates[1]) > 1e-3  # the micro-batches really differ
  # Variances are per micro-batch, so they differ from the whole batch's (the rule, not a bug).
  assert _max_diff(after[2].batch_stats['backbone'], after[1].batch_stats['backbone']) > 1e-4


def test_alternating_training_moves_parameters_and_statistics(trained_run):
  _, initial, after, _ = trained_run
  assert _max_diff(after[1].params['backbone'], initial.params['backbone']) > 1e-4
  stats = after[1].batch_stats['backbone']
  assert _max_diff(stats, initial.batch_stats['backbone']) > 1e-3
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(stats))


def test_eval_uses_running_averages(trained_run):
  setup, _, after, batch = trained_run
  state = after[1]
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  features = jax.jit(lambda var, v, train: setup.model.apply(
      var, v, train=train, mutable=['batch_stats'])[0]['features'], static_argnums=2)
  video = batch['video']
  alone = np.repeat(video[:1], len(video), axis=0)  # clip 0 in a batch of copies of itself
  evaluated = features(variables, video, False)
  # Clip 0's features do not depend on the rest of its batch: no batch statistics ...
  np.testing.assert_allclose(features(variables, alone, False)[0], evaluated[0], rtol=1e-5,
                             atol=1e-6)
  # ... they come from the stored averages: shifting the stored means changes them ...
  shifted = jax.tree_util.tree_map_with_path(
      lambda p, x: x + 1.0 if 'mean' in jax.tree_util.keystr(p) else x,
      state.batch_stats['backbone'])
  moved = features({**variables, 'batch_stats': {**state.batch_stats, 'backbone': shifted}},
                   video, False)
  assert float(jnp.max(jnp.abs(moved - evaluated))) > 1e-3
  # ... while training mode normalises with the batch: clip 0's features depend on its batch.
  assert float(jnp.max(jnp.abs(features(variables, alone, True)[0]
                               - features(variables, video, True)[0]))) > 1e-3


def test_frozen_backbone_runs_on_and_keeps_its_running_averages():
  config = tiny_config(**{'optim.backbone_lr_mult': 0.0, 'loss.hal_pass_trains_backbone': False})
  setup, initial, after, batch = _run(config)
  state = after[1]
  assert setup.model.frozen_backbone
  _assert_close(state.params['backbone'], initial.params['backbone'], rtol=0, atol=0)
  _assert_close(state.batch_stats['backbone'], initial.batch_stats['backbone'], rtol=0, atol=0)
  assert _max_diff(state.params['streams'], initial.params['streams']) > 1e-4  # heads train
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  features = jax.jit(lambda var, v, train: setup.model.apply(
      var, v, train=train, mutable=['batch_stats'])[0]['features'], static_argnums=2)
  np.testing.assert_allclose(features(variables, batch['video'], True),
                             features(variables, batch['video'], False), rtol=1e-5, atol=1e-6)
