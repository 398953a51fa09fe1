"""Batch augmentation in the train step: mixup, cutmix, random erasing (data/batch_augment.py)."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import configs_for_tests
from halluc_jax import setup as setup_lib
from halluc_jax.data import batch_augment
from halluc_jax.perf import step_inputs

B, T, H, W, C = 6, 2, 16, 12, 3
# Two streams with dims given, so no extracted dataset is needed (the abstract set-up's way).
STREAMS_WITHOUT_DATA = {'data.aux_dir': '', 'model.streams.dims': {'odf': 8, 'sdf': 8}}


def _clips(seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.standard_normal((B, T, H, W, C)), jnp.float32),
          jnp.asarray(rng.integers(0, 5, B), jnp.int32))


def test_mixup_is_the_convex_combination_with_the_rolled_batch():
  video, labels = _clips()
  mixed, soft, lam = batch_augment.mix(jax.random.PRNGKey(1), video, labels, jnp.ones(B), 5,
                                       mixup_alpha=0.8)
  lam = float(lam)
  assert 0 < lam < 1
  v, y = np.asarray(video), np.eye(5)[np.asarray(labels)]
  np.testing.assert_allclose(mixed, lam * v + (1 - lam) * np.roll(v, 1, 0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(soft, lam * y + (1 - lam) * np.roll(y, 1, 0), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(soft).sum(1), 1.0, rtol=1e-6)


def test_cutmix_pastes_one_box_on_every_frame_and_lam_is_its_area():
  video, labels = _clips()
  for seed in range(5):
    mixed, soft, lam = batch_augment.mix(jax.random.PRNGKey(seed), video, labels, jnp.ones(B), 5,
                                         cutmix_alpha=1.0)
    m, v = np.asarray(mixed), np.asarray(video)
    from_partner = np.all(m == np.roll(v, 1, 0), axis=-1) & ~np.all(m == v, axis=-1)
    kept = np.all(m == v, axis=-1)
    assert np.all(from_partner | kept)
    box = from_partner[0, 0]
    assert np.all(from_partner == box[None, None])  # same box on every clip and frame
    np.testing.assert_allclose(float(lam), 1 - box.mean(), atol=1e-6)
    y = np.eye(5)[np.asarray(labels)]
    np.testing.assert_allclose(soft, float(lam) * y + (1 - float(lam)) * np.roll(y, 1, 0),
                               rtol=1e-6, atol=1e-7)


def test_a_clip_whose_partner_is_invalid_stays_unmixed_and_prob_zero_is_identity():
  video, labels = _clips()
  valid = jnp.ones(B).at[2].set(0.0)  # clip 3's partner is clip 2
  mixed, soft, _ = batch_augment.mix(jax.random.PRNGKey(1), video, labels, valid, 5,
                                     mixup_alpha=0.8)
  np.testing.assert_array_equal(mixed[3], video[3])
  np.testing.assert_array_equal(soft[3], np.eye(5)[int(labels[3])])
  assert not np.allclose(mixed[4], video[4])
  same, soft0, lam = batch_augment.mix(jax.random.PRNGKey(1), video, labels, jnp.ones(B), 5,
                                       mixup_alpha=0.8, prob=0.0)
  np.testing.assert_array_equal(same, video)
  assert float(lam) == 1.0


def test_random_erase_boxes_are_clip_consistent_and_in_range():
  video, _ = _clips()
  erased = np.asarray(batch_augment.random_erase(jax.random.PRNGKey(3), video, 1.0))
  changed = np.any(erased != np.asarray(video), axis=-1)  # [B, T, H, W]
  for b in range(B):
    box = changed[b, 0]
    assert np.all(changed[b] == box[None])
    ys, xs = np.nonzero(box)
    assert box.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)  # a rectangle
    assert 0.01 <= box.mean() <= 1 / 3 + 0.1
  np.testing.assert_array_equal(batch_augment.random_erase(jax.random.PRNGKey(3), video, 0.0),
                                video)


def test_mix_under_a_batch_sharded_mesh_equals_the_single_device_result():
  code = r'''
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from halluc_jax.data import batch_augment
rng = np.random.default_rng(0)
video = jnp.asarray(rng.standard_normal((8, 2, 8, 8, 3)), jnp.float32)
labels = jnp.asarray(rng.integers(0, 4, 8), jnp.int32)
f = lambda v, y: batch_augment.mix(jax.random.PRNGKey(2), v, y, jnp.ones(8), 4, 0.8, 1.0)[:2]
want = jax.jit(f)(video, labels)
mesh = Mesh(np.array(jax.devices()), ('data',))
sh = NamedSharding(mesh, P('data'))
got = jax.jit(f, in_shardings=(sh, sh))(jax.device_put(video, sh), jax.device_put(labels, sh))
assert len(jax.devices()) == 8
for a, b in zip(got, want):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
print('ok')
'''
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
  assert out.returncode == 0 and 'ok' in out.stdout, out.stderr[-2000:]


def _step_metrics(augment):
  c = configs_for_tests.load('default', 'tiny', STREAMS_WITHOUT_DATA)
  c.augment.update(augment)
  setup = setup_lib.Setup(c, abstract=True, steps_per_epoch=4)
  batch = step_inputs.synthetic_batch(setup.abstract_batch(), c.data.num_classes)
  _, metrics = setup.jit_train_step()(setup.init_state(), batch)
  return jax.device_get(metrics)


def test_the_train_step_mixes_the_classification_pass_only():
  plain = _step_metrics({})
  mixed = _step_metrics({'mixup_alpha': 0.8, 'cutmix_alpha': 1.0, 'random_erase_prob': 0.5})
  assert mixed['hal_loss'] == plain['hal_loss']  # pass 1 saw the clean clips
  assert mixed['cls_loss'] != plain['cls_loss'] and np.isfinite(mixed['cls_loss'])
  assert 'accuracy' not in mixed and 'accuracy' in plain  # soft labels: no train accuracy


def test_joint_scheme_with_streams_refuses_to_augment():
  c = configs_for_tests.load('default', 'tiny', STREAMS_WITHOUT_DATA)
  c.loss.update_scheme = 'joint'
  c.augment.mixup_alpha = 0.8
  setup = setup_lib.Setup(c, abstract=True, steps_per_epoch=4)
  batch = step_inputs.synthetic_batch(setup.abstract_batch(), c.data.num_classes)
  with pytest.raises(ValueError, match='alternating'):
    setup.jit_train_step()(setup.init_state(), batch)
