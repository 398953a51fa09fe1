"""The full model: outputs, RGB-only test path, parameter groups and counts, update schemes."""
import importlib.util
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

from halluc_jax import losses
from halluc_jax import optim
from halluc_jax.covariance import uncertainty_loss
from halluc_jax.models.cenet import CENet
from halluc_jax.models.hallucinator import (PARAM_GROUPS, build_model, hallucination_pass_groups,
                                            param_labels, resolve_streams, trainable_mask,
                                            update_groups)

DIMS = {'det1': 8, 'det2': 8, 'flow': 8}
NUM_CLASSES = 5
VIDEO = (4, 4, 16, 16, 3)


def _config():
  path = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'default.py'
  spec = importlib.util.spec_from_file_location('default_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  c.model.backbone.overrides = {'depth': 1, 'width': 32, 'mlp_dim': 64, 'num_heads': 2}
  c.model.streams.sketch_dim = 4
  c.model.streams.num_sketches = 2
  c.model.fusion.out_dim = 16
  c.model.cenet.hidden_dim = 16
  c.loss.hallucination = 'uncertainty'
  return c


def _init(model):
  return jax.jit(lambda v: model.init(jax.random.PRNGKey(0), v, train=False))(jnp.zeros(VIDEO))


def _random_streams():
  return {n: jax.random.normal(jax.random.PRNGKey(i), (4, d))
          for i, (n, d) in enumerate(DIMS.items())}


@pytest.fixture(scope='module')
def setup():
  cfg = _config()
  model = build_model(cfg.model, DIMS, NUM_CLASSES, {'det1': 'odf', 'det2': 'odf'})
  variables = nn.meta.unbox(_init(model))
  video = jax.random.normal(jax.random.PRNGKey(1), VIDEO)
  batch = {
      'label': jnp.arange(4) % NUM_CLASSES, 'valid': jnp.ones(4),
      'aux': _random_streams(),
      'aux_mask': {n: jnp.ones(4) for n in DIMS},
  }
  return cfg, model, variables, video, batch


def _count(tree):
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def test_outputs_train_and_test_paths(setup):
  cfg, model, variables, video, _ = setup
  out, _ = jax.jit(lambda v: model.apply(variables, v, train=True, mutable=['batch_stats'],
                                         rngs={'dropout': jax.random.PRNGKey(2)}))(video)
  assert out['logits'].shape == (4, NUM_CLASSES) and out['logits'].dtype == jnp.float32
  assert out['features'].shape == (4, 32)
  shapes = {n: v.shape for n, v in out['hallucinated'].items()}
  assert shapes == {n: (4, d) for n, d in DIMS.items()}
  grouped = out['cholesky']['grouped']  # 8 sketch coordinates x 3 streams
  assert grouped['log_diag'].shape == (4, 8, 3) and grouped['off_diag'].shape == (4, 8, 3)
  # The test path gets RGB and nothing else.
  test_out = jax.jit(lambda v: model.apply(variables, v, train=False))(video)
  assert 'cholesky' not in test_out and test_out['logits'].shape == (4, NUM_CLASSES)


def test_rgb_only_baseline_has_no_streams_or_cenet():
  cfg = _config()
  model = build_model(cfg.model, {}, NUM_CLASSES)
  variables = _init(model)
  assert set(variables['params']) == {'backbone', 'haf', 'prednet'}
  out = jax.jit(lambda v: model.apply(variables, v, train=False))(jnp.ones(VIDEO))
  assert out['hallucinated'] == {} and out['logits'].shape == (4, NUM_CLASSES)
  labels = np.array([0, 1, 2, 1])
  loss, metrics = losses.total_loss(out, {'label': jnp.asarray(labels, jnp.int32)}, cfg.loss)
  assert 'hal_loss' not in metrics
  # No hallucination term: the joint objective is the classification CE of the logits alone.
  log_probs = special.log_softmax(np.asarray(out['logits'], np.float64), axis=1)
  expected = -log_probs[np.arange(4), labels].mean()
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['cls_loss']), expected, rtol=1e-5)


def test_parameter_groups_and_counts(setup):
  cfg, _, variables, _, _ = setup
  params = variables['params']
  assert set(params) == set(PARAM_GROUPS)
  labels = param_labels(params)
  assert jax.tree_util.tree_structure(labels) == jax.tree_util.tree_structure(params)
  assert set(jax.tree_util.tree_leaves(labels)) == set(PARAM_GROUPS)
  d, dims = 32, sum(DIMS.values())
  assert _count(params['streams']) == sum(d * m + m for m in DIMS.values())
  assert _count(params['haf']) == d * 8 + 8  # K * d = 2 * 4
  assert _count(params['prednet']) == 2 * 16 + 16 * NUM_CLASSES + NUM_CLASSES
  cenet_out = 8 * 3 + 8 * 3  # grouped: log-diagonal + 3 off-diagonal entries per coordinate
  assert _count(params['cenet']) == (dims * 16 + 16) + 2 * 16 + (16 * cenet_out + cenet_out)
  with pytest.raises(ValueError, match='variables\\["params"\\]'):
    param_labels(variables)


def _changed_groups(before, after):
  moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                 before, after)
  return {g for g in PARAM_GROUPS if any(jax.tree_util.tree_leaves(moved[g]))}


@pytest.fixture(scope='module')
def grad_fns(setup):
  """Jitted gradients of the three objectives w.r.t. params (compiled once per module)."""
  cfg, model, variables, video, batch = setup
  objectives = {
      'hal': lambda out: losses.hallucination_loss(out, batch, cfg.loss)[0],
      'cls': lambda out: losses.classification_loss(out, batch, cfg.loss)[0],
  }

  def make(objective):
    def loss(p):
      out, _ = model.apply({'params': p, 'batch_stats': variables['batch_stats']}, video,
                           train=True, rngs={'dropout': jax.random.PRNGKey(3)},
                           mutable=['batch_stats'])
      return objective(out)
    return jax.jit(jax.grad(loss))

  return {k: make(f) for k, f in objectives.items()}


def _sgd_step(params, grads, groups):
  """One SGD step on `groups` only (multi_transform: frozen groups get zero updates)."""
  labels = jax.tree_util.tree_map(lambda t: 'train' if t else 'freeze',
                                  trainable_mask(params, groups))
  tx = optax.multi_transform({'train': optax.sgd(0.1), 'freeze': optax.set_to_zero()}, labels)
  updates, _ = tx.update(grads, tx.init(params), params)
  return optax.apply_updates(params, updates)


@pytest.mark.parametrize('scheme', ['alternating', 'alternating_with_backbone', 'joint'])
def test_update_schemes_touch_the_right_groups(setup, grad_fns, scheme):
  _, _, variables, _, _ = setup
  # Start CENet away from its zero (identity-factor) init so its gradients are informative.
  params = jax.tree_util.tree_map(lambda x: x, variables['params'])
  params['cenet']['fc2']['kernel'] = 0.1 * jax.random.normal(jax.random.PRNGKey(4),
                                                             params['cenet']['fc2']['kernel'].shape)
  if scheme == 'joint':  # gradient of total_loss = alpha * hal + cls, alpha = 1
    joint = jax.tree_util.tree_map(jnp.add, grad_fns['hal'](params), grad_fns['cls'](params))
    new = _sgd_step(params, joint, PARAM_GROUPS)
    assert _changed_groups(params, new) == set(PARAM_GROUPS)
    return
  pass1_groups = hallucination_pass_groups(scheme == 'alternating_with_backbone')
  after1 = _sgd_step(params, grad_fns['hal'](params), pass1_groups)
  assert _changed_groups(params, after1) == set(pass1_groups)
  after2 = _sgd_step(after1, grad_fns['cls'](after1), PARAM_GROUPS)
  # The classification loss never reaches CENet, so pass 2 leaves it alone.
  assert _changed_groups(after1, after2) == set(PARAM_GROUPS) - {'cenet'}


def test_update_groups_follow_the_loss_config():
  cfg = _config()
  hal, cls = update_groups(cfg.loss)
  assert hal == ('streams', 'cenet', 'backbone') and cls == PARAM_GROUPS  # the paper's passes
  cfg.loss.cls_pass_trains_streams = False
  cfg.loss.hal_pass_trains_backbone = False
  hal, cls = update_groups(cfg.loss)
  assert hal == ('streams', 'cenet') and cls == ('backbone', 'haf', 'cenet', 'prednet')
  assert optim.pass_groups(cfg.optim, 'alternating', hal, cls) == {'hal': hal, 'cls': cls}


@pytest.mark.parametrize('stop_gradient', [True, False])
def test_cenet_input_gradient_switch(stop_gradient):
  hallucinated = _random_streams()
  cenet = CENet('grouped', hidden_dim=16, stop_gradient=stop_gradient)
  variables = nn.meta.unbox(cenet.init(jax.random.PRNGKey(0), hallucinated, train=False))
  params = variables['params']
  params['fc2']['kernel'] = jax.random.normal(jax.random.PRNGKey(5), params['fc2']['kernel'].shape)

  def log_det(h):
    out, _ = cenet.apply({'params': params, 'batch_stats': variables['batch_stats']}, h, train=True,
                         mutable=['batch_stats'])
    return jnp.sum(out['grouped']['log_diag'])

  grads = jax.tree_util.tree_leaves(jax.grad(log_det)(hallucinated))
  input_grad = sum(float(jnp.sum(jnp.abs(g))) for g in grads)
  assert (input_grad == 0.0) == stop_gradient


def test_cenet_clamps_log_diagonal_at_extreme_inputs():
  hallucinated = {n: jnp.full((4, d), 1e8) for n, d in DIMS.items()}
  cenet = CENet('diag', hidden_dim=16, stop_gradient=False, log_diag_clamp=7.0)
  variables = nn.meta.unbox(cenet.init(jax.random.PRNGKey(0), hallucinated, train=False))
  params = variables['params']
  params['fc2']['kernel'] = 1e3 * jax.random.normal(jax.random.PRNGKey(6),
                                                    params['fc2']['kernel'].shape)

  def loss(h):
    out, _ = cenet.apply({'params': params, 'batch_stats': variables['batch_stats']}, h,
                         train=False, mutable=['batch_stats'])
    log_diag = out['diag']['log_diag']
    assert log_diag.shape == (4, sum(DIMS.values()))
    return jnp.sum(uncertainty_loss(jnp.concatenate([h[n] for n in sorted(h)], -1) * 1e-5,
                                    out['diag'], 'diag')), log_diag

  grads, log_diag = jax.grad(loss, has_aux=True)(hallucinated)
  assert float(jnp.max(jnp.abs(log_diag))) == 7.0
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))


def test_weighted_mean_model_and_bad_config():
  cfg = _config()
  cfg.model.fusion.mode = 'weighted_mean'
  cfg.model.fusion.beta = 1.0
  model = build_model(cfg.model, DIMS, NUM_CLASSES, {'det1': 'odf', 'det2': 'odf'})
  out = jax.eval_shape(lambda v: model.init_with_output(jax.random.PRNGKey(0), v, train=False)[0],
                       jnp.zeros(VIDEO))
  assert out['logits'].shape == (4, NUM_CLASSES)
  with pytest.raises(ValueError, match='one dim'):
    jax.eval_shape(lambda v: build_model(cfg.model, {'a': 8, 'b': 6}, NUM_CLASSES).init(
        jax.random.PRNGKey(0), v, train=False), jnp.zeros(VIDEO))
  cfg.model.dtype = 'float33'
  with pytest.raises(ValueError, match='config.model.dtype'):
    build_model(cfg.model, DIMS, NUM_CLASSES)


def test_bf16_model_keeps_float32_logits_and_params():
  cfg = _config()
  cfg.model.dtype = 'bfloat16'
  model = build_model(cfg.model, DIMS, NUM_CLASSES)
  variables, out = jax.eval_shape(
      lambda v: model.init_with_output(jax.random.PRNGKey(0), v, train=False)[::-1],
      jnp.zeros(VIDEO))
  assert out['logits'].dtype == jnp.float32 and out['features'].dtype == jnp.bfloat16
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(nn.meta.unbox(variables)))


def test_resolve_streams_from_manifest_and_config():
  cfg = _config()
  manifest = {'streams': {'det1': {'dim': 8, 'group': 'odf'}, 'det2': {'dim': 8, 'group': 'odf'},
                          'flow': {'dim': 16}}}
  dims, groups = resolve_streams(cfg.model, manifest)
  assert dims == {'det1': 8, 'det2': 8, 'flow': 16} and groups == {'det1': 'odf', 'det2': 'odf'}
  cfg.model.streams.use = ('flow', 'det1')
  cfg.model.streams.groups = {'flow': 'motion'}
  dims, groups = resolve_streams(cfg.model, manifest)
  assert dims == {'flow': 16, 'det1': 8} and groups == {'det1': 'odf', 'flow': 'motion'}
  cfg.model.streams.use = ('sal1',)
  with pytest.raises(ValueError, match="'sal1'.*manifest"):
    resolve_streams(cfg.model, manifest)
  cfg.model.streams.use = ()
  cfg.model.streams.dims = {'audio': 4}
  assert resolve_streams(cfg.model) == ({'audio': 4}, {})
