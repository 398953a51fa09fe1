"""config.init_from: a fresh run's backbone comes from a VideoMAE checkpoint (halluc_jax/init_from.py)."""
import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from halluc_jax import init_from
from halluc_jax import setup as setup_lib
from halluc_jax.models.converters import videomae
import configs_for_tests  # pylint: disable=g-bad-import-order


def _config(path=''):
  c = configs_for_tests.load('default', 'tiny')
  b = c.model.backbone
  b.stem, b.posemb, b.gelu = 'patch', 'sincos', 'erf'
  c.data.aux_dir = ''
  c.init_from.path = path
  return c


def _checkpoint(width, depth, mlp, patch, tubelet, seed=0):
  """Random weights in the VideoMAE repository's layout (`blocks.N.attn.qkv`, ...)."""
  rng = np.random.default_rng(seed)
  r = lambda *s: rng.standard_normal(s).astype(np.float32)
  state = {'patch_embed.proj.weight': r(width, 3, tubelet, patch, patch),
           'patch_embed.proj.bias': r(width), 'fc_norm.weight': r(width), 'fc_norm.bias': r(width)}
  for i in range(depth):
    p = f'blocks.{i}.'
    state.update({p + 'attn.qkv.weight': r(3 * width, width), p + 'attn.q_bias': r(width),
                  p + 'attn.v_bias': r(width), p + 'attn.proj.weight': r(width, width),
                  p + 'attn.proj.bias': r(width), p + 'mlp.fc1.weight': r(mlp, width),
                  p + 'mlp.fc1.bias': r(mlp), p + 'mlp.fc2.weight': r(width, mlp),
                  p + 'mlp.fc2.bias': r(width)})
    for n in ('norm1', 'norm2'):
      state.update({f'{p}{n}.weight': r(width), f'{p}{n}.bias': r(width)})
  return state


def _size(config):
  from halluc_jax.models import variants  # pylint: disable=g-import-not-at-top
  b = config.model.backbone
  return variants.decode_variant(b.variant, **dict(b.overrides))


def test_fresh_state_gets_the_converted_backbone_and_keeps_the_rest(tmp_path):
  config = _config()
  s = _size(config)
  state_np = _checkpoint(s.width, s.depth, s.mlp_dim, s.patch_size, s.tubelet)
  path = str(tmp_path / 'videomae.safetensors')
  save_file(state_np, path)
  config.init_from.path = path
  setup = setup_lib.Setup(config, abstract=True, steps_per_epoch=4)
  fresh = setup.init_state()
  state = init_from.apply(config, fresh)
  want, _ = videomae.convert(state_np, num_heads=s.num_heads)
  got = jax.device_get(state.params['backbone'])
  np.testing.assert_array_equal(got['encoder']['block_00']['mlp']['fc1']['kernel'],
                                state_np['blocks.0.mlp.fc1.weight'].T)
  flat_want = jax.tree_util.tree_leaves_with_path(want)
  for path_, value in flat_want:
    leaf = got
    for key in path_:
      leaf = leaf[key.key]
    np.testing.assert_array_equal(leaf, value)
  for group in state.params:  # everything but the backbone stays at its init
    if group != 'backbone':
      jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.params[group]),
                   jax.device_get(fresh.params[group]))
  # The initialised model runs: one train step from it gives a finite loss.
  step = setup.jit_train_step()
  from halluc_jax.perf import step_inputs  # pylint: disable=g-import-not-at-top
  batch = step_inputs.synthetic_batch(setup.abstract_batch(), config.data.num_classes)
  _, metrics = step(state, batch)
  assert np.isfinite(float(jax.device_get(metrics['loss'])))


def test_shape_mismatch_names_the_parameter_and_both_shapes(tmp_path):
  config = _config()
  s = _size(config)
  path = str(tmp_path / 'wide.safetensors')
  save_file(_checkpoint(s.width, s.depth, 2 * s.mlp_dim, s.patch_size, s.tubelet), path)
  config.init_from.path = path
  setup = setup_lib.Setup(config, abstract=True, steps_per_epoch=4)
  with pytest.raises(ValueError, match=r"Shape mismatch for backbone params \['encoder'\]\['block_00'\]"
                                       r"\['mlp'\]\['fc1'\]\['bias'\]: checkpoint \(\d+,\), model"):
    init_from.apply(config, setup.init_state())


def test_no_path_is_from_scratch_and_bad_settings_are_clear_errors(tmp_path):
  config = _config()
  setup = setup_lib.Setup(config, abstract=True, steps_per_epoch=4)
  state = setup.init_state()
  assert init_from.apply(config, state) is state
  config.init_from.path = str(tmp_path / 'absent.safetensors')
  with pytest.raises(FileNotFoundError):
    init_from.apply(config, state)
  config.init_from.format = 'timm'
  with pytest.raises(ValueError, match='format'):
    init_from.apply(config, state)
  conv = _config(str(tmp_path / 'x.safetensors'))
  conv.model.backbone.stem = 'conv'
  with pytest.raises(ValueError, match="stem='patch'"):
    init_from.apply(conv, state)


def test_run_format_loads_named_groups_of_our_own_run_and_frozen_groups_stay(tmp_path):
  """Stage 2 of the large-scale protocol: the streams (and CENet) of a stage-1 run, frozen."""
  from halluc_jax.perf import step_inputs  # pylint: disable=g-import-not-at-top
  streams = {'data.aux_dir': '', 'model.streams.dims': {'odf': 8, 'sdf': 8}}  # no dataset needed
  stage1 = configs_for_tests.load('default', 'tiny', streams)
  stage1.seed = 3
  s1 = setup_lib.Setup(stage1, abstract=True, steps_per_epoch=4)
  state1 = s1.init_state()
  workdir = configs_for_tests.save_run(str(tmp_path / 'stage1'), stage1, state1)
  stage2 = configs_for_tests.load('default', 'tiny', streams)
  stage2.init_from.update(path=workdir, format='run', groups='streams,cenet')
  stage2.optim.frozen_groups = ('streams', 'cenet')
  stage2.optim.backbone_lr_mult = 0.0  # the protocol's frozen backbone
  stage2.optim.warmup_steps = 0  # so the first step moves what it may
  s2 = setup_lib.Setup(stage2, abstract=True, steps_per_epoch=4)
  fresh = s2.init_state()
  state2 = init_from.apply(stage2, fresh)
  for group in ('streams', 'cenet'):
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state2.params[group]),
                 jax.device_get(state1.params[group]))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(state2.params['prednet']),
               jax.device_get(fresh.params['prednet']))
  assert s2.pass_groups['hal'] == () and 'streams' not in s2.pass_groups['cls']
  before = jax.device_get(state2.params)
  batch = step_inputs.synthetic_batch(s2.abstract_batch(), stage2.data.num_classes)
  after, metrics = s2.jit_train_step()(state2, batch)
  after = jax.device_get(after.params)
  for group in ('streams', 'cenet'):
    jax.tree.map(np.testing.assert_array_equal, after[group], before[group])
  assert not np.array_equal(jax.tree.leaves(after['prednet'])[0], jax.tree.leaves(before['prednet'])[0])
  assert np.isfinite(float(metrics['loss']))
  bad = stage2.copy_and_resolve_references()
  bad.init_from.format = 'videomae'
  with pytest.raises(ValueError, match="format 'run'"):
    init_from.apply(bad, fresh)
  bad.init_from.update(format='run', groups='streams,nothing')
  with pytest.raises(ValueError, match='comma list'):
    init_from.apply(bad, fresh)
