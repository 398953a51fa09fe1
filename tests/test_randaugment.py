"""Clip-consistent RandAugment (data/randaugment.py) and repeated augmentation in the pipeline."""
import numpy as np
import pytest

from halluc_jax.data import pipeline
from halluc_jax.data import randaugment
from halluc_jax import setup as setup_lib
from test_pipeline import _config, _take


def _clip(t=3, h=20, w=20, seed=0, same=True):
  rng = np.random.default_rng(seed)
  frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  return np.stack([frame] * t) if same else rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('name', sorted(randaugment.OPS))
def test_every_op_keeps_shape_dtype_and_treats_every_frame_alike(name):
  clip = _clip()
  out = randaugment.OPS[name](clip, 6.0, np.random.default_rng(1))
  assert out.shape == clip.shape and out.dtype == np.uint8
  for k in range(1, len(out)):
    np.testing.assert_array_equal(out[k], out[0])
  if name not in ('equalize', 'auto_contrast'):  # those can be no-ops on a full-range clip
    assert not np.array_equal(out, clip)


def test_ops_against_direct_formulas():
  clip = _clip(same=False)
  rng = np.random.default_rng(0)
  np.testing.assert_array_equal(randaugment.invert(clip, 5, rng), 255 - clip)
  np.testing.assert_array_equal(randaugment.solarize(clip, 0.0, rng), clip)  # threshold 256
  np.testing.assert_array_equal(randaugment.solarize(clip, 10.0, rng), 255 - clip)
  np.testing.assert_array_equal(randaugment.posterize(clip, 10.0, rng), clip & 0xF0)  # 4 bits
  added = randaugment.solarize_add(clip, 10.0, rng)
  np.testing.assert_array_equal(added, np.where(clip < 128, np.minimum(clip.astype(int) + 110,
                                                                       255), clip))
  shifted = randaugment.translate_x(clip, 10.0, np.random.default_rng(0))  # |dx| = 9 px
  right = np.array_equal(shifted[:, :, 9:], clip[:, :, :-9])
  left = np.array_equal(shifted[:, :, :-9], clip[:, :, 9:])
  assert right or left
  low = (clip // 2).astype(np.uint8) + 10  # range [10, 137]
  stretched = randaugment.auto_contrast(low, 0, rng)
  assert stretched.min() == 0 and stretched.max() == 255


def test_rand_augment_is_seeded_and_checks_its_input():
  clip = _clip(same=False)
  a = randaugment.rand_augment(clip, np.random.default_rng(5), 4, 9.0)
  b = randaugment.rand_augment(clip, np.random.default_rng(5), 4, 9.0)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(randaugment.rand_augment(clip, np.random.default_rng(5), 0, 9.0),
                                clip)
  with pytest.raises(ValueError, match='uint8'):
    randaugment.rand_augment(clip.astype(np.float32), np.random.default_rng(0), 2, 5.0)


def test_pipeline_randaugment_and_repeated_views_share_a_batch(tiny_dataset):
  config = _config(tiny_dataset, batch_size=4)
  plain = _take(pipeline.make_train_dataset(config, 0, 1), 1)[0]
  config.augment.randaugment_ops = 3
  config.augment.randaugment_magnitude = 9.0
  augmented = _take(pipeline.make_train_dataset(config, 0, 1), 1)[0]
  np.testing.assert_array_equal(augmented['video_index'], plain['video_index'])
  assert not np.allclose(augmented['video'], plain['video'])
  config.augment.randaugment_ops = 0
  config.augment.repeated_aug = 2
  batches = _take(pipeline.make_train_dataset(config, 0, 1), 2)
  for b in batches:  # [a, b, a, b]: two views of two videos, each view augmented differently
    idx = b['video_index']
    np.testing.assert_array_equal(idx[:2], idx[2:])
    assert idx[0] != idx[1]
    assert not np.allclose(b['video'][0], b['video'][2])
  # The first four distinct videos are the unrepeated pipeline's first batch.
  seen = np.concatenate([b['video_index'][:2] for b in batches])
  np.testing.assert_array_equal(seen, plain['video_index'])
  plain_steps, _ = setup_lib.schedule_lengths(_config(tiny_dataset, batch_size=4))
  steps, _ = setup_lib.schedule_lengths(config)
  assert steps == 2 * plain_steps
  config.augment.repeated_aug = 3
  with pytest.raises(ValueError, match='divide'):
    pipeline.make_train_dataset(config, 0, 1)
