"""Frozen backbone, cached features (tools/cache_features.py, data/feature_cache.py)."""
import jax
import numpy as np
import pytest

import configs_for_tests
from halluc_jax import setup as setup_lib
from halluc_jax import train
from halluc_jax.data import feature_cache
from halluc_jax.data import pipeline
from halluc_jax.tools import cache_features
from test_pipeline import _config


def _frozen_config(root, backbone='i3d'):
  c = _config(root, batch_size=4, eval_batch_size=4, eval_clips=2, num_frames=8, crop_size=32,
              resize_short=40)
  tiny = configs_for_tests.load(backbone, 'tiny')
  c.model = tiny.model
  c.optim.backbone_lr_mult = 0.0
  c.train.num_train_steps = 3
  c.train.compilation_cache_dir = ''
  return c


def test_cached_features_give_the_video_models_outputs_and_train(tiny_dataset, tmp_path):
  config = _frozen_config(tiny_dataset)
  out = str(tmp_path / 'cache')
  manifest, _ = cache_features.write_cache(config, out, views=2)
  train_records = len(pipeline.load_split(config, 'train'))
  assert manifest['splits']['train']['num_records'] == 2 * train_records
  assert manifest['feature_shape'] == list(feature_cache.feature_shape(out))
  # The cached eval features, through the heads, give the logits the full model gives on the
  # decoded eval clips (same seed: same head init; the backbone is frozen, so eval mode).
  video_setup = setup_lib.Setup(config)
  video_state = video_setup.init_state()
  cached = config.copy_and_resolve_references()
  cached.data.feature_cache = out
  cache_setup = setup_lib.Setup(cached)
  cache_state = cache_setup.init_state()
  assert 'backbone' not in cache_state.params
  for group in cache_state.params:
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(cache_state.params[group]),
                 jax.device_get(video_state.params[group]))
  video_batch = next(pipeline.make_eval_dataset(config, 0, 1))
  cache_batch = next(pipeline.make_eval_dataset(cached, 0, 1))
  np.testing.assert_array_equal(video_batch['video_index'], cache_batch['video_index'])
  np.testing.assert_array_equal(video_batch['view_index'], cache_batch['view_index'])
  want = video_setup.predict_fn(video_state)(video_batch)['logits']
  got = cache_setup.predict_fn(cache_state)(cache_batch)['logits']
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)
  # A whole run on the cache: trains, evaluates val and test, from the features alone; a
  # backbone checkpoint in its config is not needed there (the cache holds its features).
  cached.init_from.path = str(tmp_path / 'absent_backbone.safetensors')
  cached.init_from.format = 'i3d_pytorch'
  summary = train.train_and_evaluate(cached, str(tmp_path / 'run'))
  assert np.isfinite(summary['eval']['top1']) and summary['eval']['num_videos'] > 0


def test_a_cache_for_other_settings_or_a_trainable_backbone_is_refused(tiny_dataset, tmp_path):
  config = _frozen_config(tiny_dataset)
  out = str(tmp_path / 'cache')
  cache_features.write_cache(config, out, views=1)
  other = config.copy_and_resolve_references()
  other.data.feature_cache = out
  other.data.crop_size = 24
  with pytest.raises(ValueError, match='data.crop_size'):
    next(pipeline.make_train_dataset(other, 0, 1))
  trainable = config.copy_and_resolve_references()
  trainable.data.feature_cache = out
  trainable.optim.backbone_lr_mult = 1.0
  with pytest.raises(ValueError, match='backbone_lr_mult=0'):
    setup_lib.Setup(trainable)
  with pytest.raises(FileNotFoundError, match='cache_features'):
    feature_cache.read_manifest(str(tmp_path / 'none'))
