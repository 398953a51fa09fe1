"""Gradient accumulation (train.grad_accum_steps): N micro-batches give the large-batch update.

The step with N = 4 is compared with the step with N = 1 from the same state on the same batch,
for both update schemes and both hallucination losses, on a batch whose valid clips and target
masks are spread unevenly over the micro-batches (one micro-batch has no valid clip at all), so
weighting micro-batches equally instead of by their counts fails the comparison.

Two things differ between micro-batches by design and are neutralised here:
* dropout / stochastic-depth masks (micro-batch k draws from fold_in(rng, k)): both are 0;
* BatchNorm (PredNet, CENet) normalises with each micro-batch's statistics: every micro-batch
  holds the same two clips (rows k and k + 4 of the batch, see `grad_accum.split`), so its
  statistics equal the whole batch's. Labels, targets and masks differ per row.
"""
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from halluc_jax import grad_accum
from halluc_jax import setup as setup_lib
from halluc_jax import sharding

import configs_for_tests

CLIPS, MICRO = 4, 4
BATCH = CLIPS * MICRO
DIMS = {'odf': 8, 'sdf': 8}


# No XLA optimisation passes: compile time dominates on these tiny models (conftest.py).
pytestmark = pytest.mark.usefixtures('fast_compilation')


def tiny_config(**overrides):
  """configs/default.py:tiny on 4 x 16 x 16 clips, two 8-dim target streams, no data on disk."""
  return configs_for_tests.load('default', 'tiny', {
      'data.aux_dir': '', 'data.num_classes': 5, 'data.crop_size': 16, 'data.batch_size': BATCH,
      'model.backbone.stochastic_depth': 0.0, 'model.backbone.dropout': 0.0,
      'model.streams.dims': DIMS, 'model.fusion.out_dim': 24, 'model.cenet.hidden_dim': 8,
      'train.num_train_steps': 10,
      # Warm-up would make the first step's learning rate 0 and every update trivially equal.
      'optim.schedule': 'constant', 'optim.warmup_steps': 0, 'optim.lr': 1e-3,
      # Adam's first update is ~lr * g / (|g| + eps): with the default eps 1e-8, a gradient
      # entry that is float noise (~1e-10) flips between -lr and +lr; a larger eps keeps it
      # smooth.
      'optim.eps': 1e-3, **overrides})


def uneven_batch(num_classes, seed=0):
  """16 rows = 4 clips x 4: micro-batch k (rows k, k + 4, ...) holds all 4 clips, so its
  BatchNorm statistics are the whole batch's; labels, targets and masks differ per row."""
  rng = np.random.default_rng(seed)
  # Clips of unlike offset and scale: iid noise clips give near-equal features whose BatchNorm
  # variance is ~0, where float32 rounding alone makes 4-row and 16-row statistics disagree.
  shape = (CLIPS, 4, 16, 16, 3)
  clips = (rng.standard_normal(shape) * rng.uniform(0.5, 2.0, (CLIPS, 1, 1, 1, 1))
           + rng.uniform(-1.0, 1.0, (CLIPS, 1, 1, 1, 1))).astype(np.float32)
  valid = np.ones(BATCH, np.float32)
  valid[[2, 3, 7, 11, 15]] = 0.0  # micro-batch 3 (rows 3, 7, 11, 15) has no valid clip
  odf, sdf = np.ones(BATCH, np.float32), np.ones(BATCH, np.float32)
  odf[[1, 6]] = 0.0
  sdf[[0, 1, 5, 9, 13]] = 0.0  # micro-batch 1 has no sdf target
  return {
      'video': np.repeat(clips, MICRO, axis=0),
      'label': rng.integers(0, num_classes, BATCH).astype(np.int32),
      'valid': valid,
      'video_index': np.arange(BATCH, dtype=np.int32),
      'aux': {n: rng.standard_normal((BATCH, d)).astype(np.float32) for n, d in DIMS.items()},
      'aux_mask': {'odf': odf, 'sdf': sdf},
      # Some coordinates constant on the "train split": the uncertainty loss's r^2 term.
      'aux_varies': {n: np.broadcast_to((np.arange(d) % 3 > 0).astype(np.float32),
                                        (BATCH, d)).copy() for n, d in DIMS.items()},
      'aux_bad': np.zeros(BATCH, np.int32)}


def one_step(config, num_micro):
  """(initial params, state after one step, metrics), all on the host."""
  setup = setup_lib.Setup(config, sharding.make_mesh(config.mesh), abstract=True)
  batch = jax.device_put(uneven_batch(config.data.num_classes), setup.batch_sharding)
  state = setup.init_state()
  initial = jax.device_get(state.params)  # before the step donates the state
  with setup.context():
    state, metrics = setup.jit_train_step(grad_accum_steps=num_micro)(state, batch)
  return initial, jax.device_get(state), jax.device_get(metrics)


def assert_trees_close(want, got, tol, what):
  """|got - want| <= tol * (max |want leaf| + 0.01 max |want tree|), leaf by leaf.

  Relative to the leaf, as float32 sums in another order differ relatively; the tree-wide
  floor covers gradients that are 0 in exact arithmetic (an attention key bias) and float
  noise here.
  """
  flat_want = jax.tree_util.tree_leaves_with_path(want)
  flat_got = jax.tree.leaves(got)
  assert len(flat_want) == len(flat_got), what
  tree_scale = max(float(np.max(np.abs(a))) for _, a in flat_want if np.size(a))
  for (path, a), b in zip(flat_want, flat_got):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(a)) if a.size else 0.0
    np.testing.assert_allclose(b, a, rtol=0, atol=tol * (scale + 0.01 * tree_scale),
                               err_msg=f'{what}{jax.tree_util.keystr(path)}')


@pytest.mark.parametrize('scheme,hallucination', [('joint', 'mse'),
                                                  ('alternating', 'uncertainty')])
def test_accumulated_step_equals_large_batch_step(scheme, hallucination):
  config = tiny_config(**{'loss.update_scheme': scheme, 'loss.hallucination': hallucination})
  initial, want_state, want_metrics = one_step(config, 1)
  _, got_state, got_metrics = one_step(config, MICRO)

  assert set(got_metrics) == set(want_metrics)
  for k, v in want_metrics.items():
    np.testing.assert_allclose(got_metrics[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
  assert want_metrics['finite'] == 1.0 and want_metrics['num_invalid'] == 5.0
  assert (hallucination == 'uncertainty') == ('hal_unc/constant_sq' in want_metrics)
  # Adam's first moment after one step is (1 - b1) * the clipped gradient: the gradients agree.
  assert_trees_close(want_state.opt_state, got_state.opt_state, 1e-3, 'opt_state')
  assert_trees_close(want_state.batch_stats, got_state.batch_stats, 1e-5, 'batch_stats')
  want_update, got_update = (jax.tree.map(np.subtract, s.params, initial)
                             for s in (want_state, got_state))
  assert_trees_close(want_update, got_update, 1e-3, 'params - initial params')
  assert max(np.max(np.abs(u)) for u in jax.tree.leaves(want_update)) > 1e-4  # params moved


def test_split_is_strided_and_keeps_the_batch_axis_sharded():
  mesh = sharding.make_mesh(tiny_config().mesh)
  micro_sharding = grad_accum.micro_batch_sharding(mesh, BATCH, MICRO)
  assert micro_sharding.spec == jax.sharding.PartitionSpec(None, sharding.BATCH_AXES)
  x = np.arange(BATCH * 3).reshape(BATCH, 3)
  split = jax.jit(lambda b: grad_accum.split(b, MICRO, micro_sharding))({'x': x})['x']
  assert split.shape == (MICRO, BATCH // MICRO, 3)
  np.testing.assert_array_equal(split[1], x[1::MICRO])
  assert split.sharding.is_equivalent_to(micro_sharding, split.ndim)
  with pytest.raises(ValueError, match='grad_accum_steps=3'):
    grad_accum.micro_batch_sharding(mesh, BATCH, 3)


_MESH_SCRIPT = """
import jax, numpy as np
import test_grad_accum as t
jax.config.update('jax_disable_most_optimizations', True)
assert jax.device_count() == 8
c = t.tiny_config(**{'mesh.shape': {'data': 2, 'fsdp': 4, 'tensor': 1}})
initial, want, want_metrics = t.one_step(c, 1)
_, got, got_metrics = t.one_step(c, 2)
for k, v in want_metrics.items():
  np.testing.assert_allclose(got_metrics[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
t.assert_trees_close(*(jax.tree.map(np.subtract, s.params, initial) for s in (want, got)),
                     1e-3, 'params - initial params')
"""


def test_accumulation_on_a_data_and_fsdp_mesh():
  """8 fake CPU devices as data=2 x fsdp=4 (parameters and moments sharded): each micro-batch
  of 8 is split over all 8 devices, and N=2 gives the N=1 alternating update."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=8')
  proc = subprocess.run([sys.executable, '-c', _MESH_SCRIPT], cwd=pathlib.Path(__file__).parent,
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
