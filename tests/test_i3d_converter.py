"""I3D checkpoints -> our I3D (halluc_jax/models/converters/i3d.py): parity with a torch I3D.

The torch I3D of halluc_jax/bench/torch_peers.py (an independent implementation of the same
layout), built with random weights and random BatchNorm statistics, in eval mode: its state dict,
renamed to piergiaj/pytorch-i3d's names, converts into our Flax I3D, which must give the same
Mixed_5c map and X(rgb) on the same clip. The same weights written as a DeepMind kinetics-i3d TF1
checkpoint (name-based, tf.compat.v1.train.Saver) must convert to the same variables, with the
BatchNorm scale 1 (their checkpoints have none). The parity tests need the '.[bench]' extra
(torch) and TensorFlow; the key-coverage tests need neither.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax import init_from
from halluc_jax import setup as setup_lib
from halluc_jax.models import i3d
from halluc_jax.models.converters import i3d as converter
from halluc_jax.models.converters import state_dict as state_dict_lib
from halluc_jax.models.variants import decode_i3d_variant
import configs_for_tests  # pylint: disable=g-bad-import-order

VARIANT = 'w0.25/111'  # quarter width, one block per stage: runs in seconds on CPU
CLIP = (2, 16, 64, 64, 3)
CLASSES = 7


# No XLA optimisation passes: compile time dominates on these tiny models (conftest.py).
pytestmark = pytest.mark.usefixtures('fast_compilation')


def _torch_peer(size, seed=0):
  torch = pytest.importorskip('torch')
  from halluc_jax.bench import torch_peers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  model = torch_peers.i3d(i3d.layout(size), CLASSES)
  with torch.no_grad():  # non-trivial BatchNorm everywhere, so a swapped or dropped one shows
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm3d):
        m.weight.copy_(1 + 0.2 * torch.randn_like(m.weight))
        m.bias.copy_(0.2 * torch.randn_like(m.bias))
        m.running_mean.copy_(0.2 * torch.randn_like(m.running_mean))
        m.running_var.copy_(0.5 + torch.rand_like(m.running_var))
  return model.eval()


def peer_to_pytorch_i3d(peer_state, size):
  """torch_peers' names -> pytorch-i3d's: the peer keeps the layers in one `features`
  Sequential (`features.<i>.conv.conv.weight`, Inception branches as Sequentials `b1.0`, `b1.1`,
  `b3.1` after the pool) and a Linear classifier; pytorch-i3d names units by endpoint
  (`Mixed_3c.b1a.conv3d.weight`) and has a 1x1x1 conv classifier (`logits.conv3d`)."""
  branches = {'b0': 'b0', 'b1a': 'b1.0', 'b1b': 'b1.1', 'b2a': 'b2.0', 'b2b': 'b2.1',
              'b3b': 'b3.1'}
  out = {}
  for index, (kind, name, *_) in enumerate(i3d.layout(size)):
    pairs = ((name, f'features.{index}'),) if kind == 'unit' else (
        ((f'{name}.{ours}', f'features.{index}.{theirs}') for ours, theirs in branches.items())
        if kind == 'inception' else ())
    for ours, theirs in pairs:
      out[f'{ours}.conv3d.weight'] = peer_state[f'{theirs}.conv.conv.weight']
      for leaf in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
        out[f'{ours}.bn.{leaf}'] = peer_state[f'{theirs}.bn.{leaf}']
  w = peer_state['logits.weight']
  out['logits.conv3d.weight'] = w.reshape(w.shape + (1, 1, 1))
  out['logits.conv3d.bias'] = peer_state['logits.bias']
  assert len(out) == len(peer_state), sorted(set(peer_state))  # every peer weight renamed
  return out


def pytorch_to_tf(state, size, scoped=True):
  """pytorch-i3d names and layouts -> kinetics-i3d's (written out here from the key map in
  converters/i3d.py's docstring): conv w [t, h, w, in, out], beta and moving stats, no gamma."""
  prefix = converter.TF_SCOPE if scoped else ''
  out = {}
  for path, _ in converter.units(size):
    u = '.'.join(path)
    p = f'{prefix}{converter.tf_unit_name(path)}/'
    out[p + 'conv_3d/w'] = np.asarray(state[f'{u}.conv3d.weight']).transpose(2, 3, 4, 1, 0)
    out[p + 'batch_norm/beta'] = np.asarray(state[f'{u}.bn.bias'])
    out[p + 'batch_norm/moving_mean'] = np.asarray(state[f'{u}.bn.running_mean'])
    out[p + 'batch_norm/moving_variance'] = np.asarray(state[f'{u}.bn.running_var'])
  w = np.asarray(state['logits.conv3d.weight'])
  out[prefix + 'Logits/Conv3d_0c_1x1/conv_3d/w'] = w.reshape(w.shape[:2]).T.reshape(
      1, 1, 1, w.shape[1], w.shape[0])
  out[prefix + 'Logits/Conv3d_0c_1x1/conv_3d/b'] = np.asarray(state['logits.conv3d.bias'])
  return out


def write_tf1_checkpoint(variables, path):
  """A name-based TF1 checkpoint (as DeepMind's Saver wrote them) of {name: array}."""
  tf = pytest.importorskip('tensorflow')
  with tf.Graph().as_default():
    var_list = {name: tf.compat.v1.Variable(value, name=name.replace('/', '_'))
                for name, value in variables.items()}
    saver = tf.compat.v1.train.Saver(var_list=var_list)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return saver.save(sess, path, write_meta_graph=False)


def _rel(a, b):
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _random_pytorch_state(size, seed=0):
  """Random weights under pytorch-i3d's names and shapes (no torch needed)."""
  rng = np.random.default_rng(seed)
  state = {}
  for path, kernel in converter.units(size):
    u, c = '.'.join(path), kernel[-1]
    state[f'{u}.conv3d.weight'] = rng.standard_normal(
        (c, kernel[3]) + kernel[:3]).astype(np.float32) * 0.1
    state[f'{u}.bn.weight'] = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
    state[f'{u}.bn.bias'] = (0.1 * rng.standard_normal(c)).astype(np.float32)
    state[f'{u}.bn.running_mean'] = (0.1 * rng.standard_normal(c)).astype(np.float32)
    state[f'{u}.bn.running_var'] = (0.5 + rng.random(c)).astype(np.float32)
  c = converter.units(size)[-1][1][-1]
  state['logits.conv3d.weight'] = rng.standard_normal((CLASSES, c, 1, 1, 1)).astype(np.float32)
  state['logits.conv3d.bias'] = rng.standard_normal(CLASSES).astype(np.float32)
  return state


def _shapes(tree):
  return jax.tree.map(np.shape, tree)


def test_converted_torch_i3d_gives_its_mixed_5c_map_and_x_rgb():
  torch = pytest.importorskip('torch')
  size = decode_i3d_variant(VARIANT)
  peer = _torch_peer(size)
  state = peer_to_pytorch_i3d({k: v.numpy() for k, v in peer.state_dict().items()}, size)
  variables, logits = converter.convert_pytorch(state, size)
  clip = np.random.default_rng(1).standard_normal(CLIP).astype(np.float32)
  with torch.no_grad():
    mixed_5c = peer.features(torch.from_numpy(clip).permute(0, 4, 1, 2, 3))
    want_map = mixed_5c.permute(0, 2, 3, 4, 1).numpy()  # channels last, as ours
    want_logits = peer(torch.from_numpy(clip)).numpy()
  want_x = np.asarray(i3d.temporal_features(jnp.asarray(want_map)))
  ours = i3d.I3D(size)
  init = nn.meta.unbox(ours.init(jax.random.key(0), clip, train=False))
  for collection in ('params', 'batch_stats'):  # exactly the model's tree
    assert _shapes(init[collection]) == _shapes(variables[collection])
  x, inter = ours.apply(variables, clip, train=False, capture_intermediates=True)
  got_map = np.asarray(inter['intermediates']['Mixed_5c']['__call__'][0])
  assert got_map.shape == want_map.shape == (2, 2, 2, 2, 256)
  assert _rel(got_map, want_map) <= 1e-4
  assert _rel(np.asarray(x), want_x) <= 1e-4
  # The classifier comes back separately and reproduces the peer's logits from the pooled map.
  got_logits = want_map.mean((1, 2, 3)) @ logits['kernel'] + logits['bias']
  assert _rel(got_logits, want_logits) <= 1e-4


def test_tf1_checkpoint_converts_to_the_pytorch_layout_with_scale_one(tmp_path):
  size = decode_i3d_variant(VARIANT)
  state = _random_pytorch_state(size)
  want, want_logits = converter.convert_pytorch(state, size)
  prefix = write_tf1_checkpoint(pytorch_to_tf(state, size), str(tmp_path / 'model.ckpt'))
  got, got_logits = converter.convert_tf(converter.read_tf_checkpoint(prefix), size)
  want['params'] = jax.tree_util.tree_map_with_path(
      lambda p, a: np.ones_like(a) if p[-1].key == 'scale' else a, want['params'])
  jax.tree.map(np.testing.assert_array_equal, got, want)
  jax.tree.map(np.testing.assert_array_equal, got_logits, want_logits)
  # rgb_scratch_kin600's form: no tower scope, BatchNorm vectors [1, 1, 1, 1, C], optimiser slots.
  flat = pytorch_to_tf(state, size, scoped=False)
  kin600 = {k: (v.reshape(1, 1, 1, 1, -1) if '/batch_norm/' in k else v) for k, v in flat.items()}
  kin600.update({k + '/Momentum': v for k, v in flat.items()}, global_step=np.int64(7))
  again, _ = converter.convert_tf(kin600, size)
  jax.tree.map(np.testing.assert_array_equal, again, want)
  with pytest.raises(FileNotFoundError):
    converter.read_tf_checkpoint(str(tmp_path / 'absent.ckpt'))


def test_full_key_map_has_every_variable_of_the_full_model():
  size = decode_i3d_variant('full')
  clip = jax.ShapeDtypeStruct((1, 16, 224, 224, 3), jnp.float32)
  abstract = nn.meta.unbox(jax.eval_shape(
      lambda v: i3d.I3D(size).init(jax.random.key(0), v, train=False), clip))
  state = {}
  for path, kernel in converter.units(size):  # zeros with the right shapes
    u, c = '.'.join(path), kernel[-1]
    state[f'{u}.conv3d.weight'] = np.zeros((c, kernel[3]) + kernel[:3], np.float32)
    for leaf in ('weight', 'bias', 'running_mean', 'running_var'):
      state[f'{u}.bn.{leaf}'] = np.zeros(c, np.float32)
  state['logits.conv3d.weight'] = np.zeros((400, 1024, 1, 1, 1), np.float32)
  state['logits.conv3d.bias'] = np.zeros(400, np.float32)
  assert len(state) == 57 * 5 + 2  # 57 Unit3Ds in the published network
  variables, logits = converter.convert_pytorch(state, size)
  for collection in ('params', 'batch_stats'):
    assert _shapes(abstract[collection]) == _shapes(variables[collection])
  assert logits['kernel'].shape == (1024, 400)
  tf_state = pytorch_to_tf(state, size)
  assert 'RGB/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w' in tf_state
  assert len(tf_state) == 57 * 4 + 2  # DeepMind's rgb_imagenet holds 230 variables
  assert _shapes(converter.convert_tf(tf_state, size)[0]) == _shapes(variables)
  # The full network into the reduced 'mini' model is an error naming a parameter, not a slice.
  with pytest.raises(ValueError, match=r"wrong shapes: \['Conv3d_1a_7x7\.conv3d\.weight "
                                       r"\(64, 3, 7, 7, 7\) \(the model needs \(7, 7, 7, 3, 16\)"):
    converter.convert_pytorch(state, decode_i3d_variant('mini'))


def test_every_key_and_shape_is_accounted_for():
  size = decode_i3d_variant('w0.125/111')
  state = _random_pytorch_state(size)
  variables, _ = converter.convert_pytorch(state, size)
  np.testing.assert_array_equal(variables['params']['Mixed_3c']['b1b']['conv3d']['kernel'],
                                state['Mixed_3c.b1b.conv3d.weight'].transpose(2, 3, 4, 1, 0))
  np.testing.assert_array_equal(variables['batch_stats']['Conv3d_2c_3x3']['bn']['var'],
                                state['Conv3d_2c_3x3.bn.running_var'])
  with pytest.raises(ValueError, match=r"not mapped onto the model: \['Mixed_3c\.b1b\.extra'\]"):
    converter.convert_pytorch(dict(state, **{'Mixed_3c.b1b.extra': np.zeros(3)}), size)
  missing = dict(state)
  del missing['Mixed_4f.b2a.bn.running_mean']
  with pytest.raises(ValueError, match=r"missing: \['Mixed_4f\.b2a\.bn\.running_mean'\]"):
    converter.convert_pytorch(missing, size)
  wrong = dict(state, **{'Mixed_5c.b0.bn.bias': np.zeros(5, np.float32)})
  with pytest.raises(ValueError, match=r"wrong shapes: \['Mixed_5c\.b0\.bn\.bias \(5,\)"):
    converter.convert_pytorch(wrong, size)
  tf_state = pytorch_to_tf(state, size)
  with pytest.raises(ValueError, match=r"missing: \['Mixed_3c/Branch_1/Conv3d_0b_3x3/conv_3d/w'\]"):
    converter.convert_tf({k: v for k, v in tf_state.items() if 'Mixed_3c/Branch_1/Conv3d_0b' not
                          in k or not k.endswith('conv_3d/w')}, size)
  with pytest.raises(ValueError, match='optical-flow tower'):
    converter.convert_tf({'Flow/inception_i3d/Conv3d_1a_7x7/conv_3d/w': np.zeros(3)}, size)
  # Round trip: the converted variables, written back in pytorch-i3d's layout, are the input.
  back = {}
  for path, _ in converter.units(size):
    u, p, s = '.'.join(path), variables['params'], variables['batch_stats']
    for key in path:
      p, s = p[key], s[key]
    back[f'{u}.conv3d.weight'] = p['conv3d']['kernel'].transpose(4, 3, 0, 1, 2)
    back.update({f'{u}.bn.weight': p['bn']['scale'], f'{u}.bn.bias': p['bn']['bias'],
                 f'{u}.bn.running_mean': s['bn']['mean'], f'{u}.bn.running_var': s['bn']['var']})
  for key, value in back.items():
    np.testing.assert_array_equal(value, state[key])
  assert len(back) == len(state) - 2  # all but the logits


def _i3d_config(path, fmt):
  c = configs_for_tests.load('i3d', 'tiny')
  c.data.aux_dir = ''
  c.init_from.path, c.init_from.format = path, fmt
  return c


@pytest.mark.parametrize('fmt', ['i3d_pytorch', 'i3d_tf'])
def test_init_from_loads_params_and_batch_stats_and_keeps_the_rest(tmp_path, fmt):
  safetensors_numpy = pytest.importorskip('safetensors.numpy')
  config = _i3d_config('', fmt)
  size = decode_i3d_variant(config.model.backbone.variant)
  state_np = _random_pytorch_state(size)
  if fmt == 'i3d_pytorch':
    path = str(tmp_path / 'rgb_imagenet.safetensors')
    safetensors_numpy.save_file({'module.' + k: v for k, v in state_np.items()}, path)
  else:
    path = write_tf1_checkpoint(pytorch_to_tf(state_np, size), str(tmp_path / 'model.ckpt'))
  config.init_from.path = path
  setup = setup_lib.Setup(config, abstract=True, steps_per_epoch=4)
  fresh = setup.init_state()
  state = init_from.apply(config, fresh)
  want, _ = (converter.convert_pytorch(state_dict_lib.load(path), size) if fmt == 'i3d_pytorch'
             else converter.convert_tf(converter.read_tf_checkpoint(path), size))
  for collection in ('params', 'batch_stats'):
    got = jax.device_get(getattr(state, collection)['backbone'])
    jax.tree.map(np.testing.assert_array_equal, got, want[collection])
    for group in getattr(state, collection):  # everything but the backbone stays at its init
      if group != 'backbone':
        jax.tree.map(np.testing.assert_array_equal,
                     jax.device_get(getattr(state, collection)[group]),
                     jax.device_get(getattr(fresh, collection)[group]))
  if fmt == 'i3d_tf':
    return  # one train step from the loaded model is enough (below, pytorch layout)
  step = setup.jit_train_step()
  from halluc_jax.perf import step_inputs  # pylint: disable=g-import-not-at-top
  batch = step_inputs.synthetic_batch(setup.abstract_batch(), config.data.num_classes)
  _, metrics = step(state, batch)
  assert np.isfinite(float(jax.device_get(metrics['loss'])))


def test_init_from_i3d_formats_need_the_i3d_backbone(tmp_path):
  config = configs_for_tests.load('default', 'tiny')
  config.init_from.path, config.init_from.format = str(tmp_path / 'x.pt'), 'i3d_pytorch'
  with pytest.raises(ValueError, match='needs the I3D backbone'):
    init_from.converted_variables(config.init_from, config)
