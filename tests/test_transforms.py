"""Clip transforms: shapes, per-frame consistency, crop bounds, flips, normalisation."""
import numpy as np
import pytest

from halluc_jax.data import transforms


def _clip(t=4, h=30, w=40, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


def test_resize_matches_per_frame_cv2_and_keeps_dtype():
  import cv2
  clip = _clip()
  out = transforms.resize(clip, 15, 20)
  assert out.shape == (4, 15, 20, 3) and out.dtype == np.uint8
  for t in range(4):  # the stacked-channel fast path must match frame-by-frame resizing
    ref = cv2.resize(clip[t], (20, 15), interpolation=cv2.INTER_AREA)  # (cv2 rounds +-1 apart)
    np.testing.assert_allclose(out[t].astype(int), ref.astype(int), atol=1)
  up = transforms.resize(clip, 45, 60)
  for t in range(4):
    ref = cv2.resize(clip[t], (60, 45), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(up[t].astype(int), ref.astype(int), atol=1)


def test_resize_short_keeps_aspect():
  assert transforms.resize_short(_clip(h=30, w=40), 15).shape == (4, 15, 20, 3)
  assert transforms.resize_short(_clip(h=40, w=30), 15).shape == (4, 20, 15, 3)


def test_center_crop_takes_the_middle():
  clip = _clip(h=10, w=12)
  out = transforms.center_crop(clip, 6)
  np.testing.assert_array_equal(out, clip[:, 2:8, 3:9])
  with pytest.raises(ValueError, match='outside'):
    transforms.center_crop(clip, 11)


@pytest.mark.parametrize('seed', range(20))
def test_random_resized_crop_window_within_bounds_and_ranges(seed):
  rng = np.random.default_rng(seed)
  top, left, h, w = transforms.random_resized_crop_window(rng, 48, 64, (0.3, 1.0), (0.75, 1.333))
  assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
  assert 0.25 * 48 * 64 <= h * w <= 48 * 64
  assert 0.7 <= w / h <= 1.4


def test_random_resized_crop_window_falls_back_to_centre():
  # An aspect range no window of the requested area can satisfy forces the fallback.
  rng = np.random.default_rng(0)
  top, left, h, w = transforms.random_resized_crop_window(rng, 10, 100, (0.9, 1.0), (0.5, 1.0))
  assert (h, w) == (10, 10) and (top, left) == (0, 45)


def test_random_resized_crop_same_window_on_every_frame():
  frame = _clip(t=1, h=48, w=64)
  clip = np.repeat(frame, 5, axis=0)
  out = transforms.random_resized_crop(clip, np.random.default_rng(3), 32, (0.2, 0.6))
  assert out.shape == (5, 32, 32, 3)
  for t in range(1, 5):
    np.testing.assert_array_equal(out[t], out[0])
  # Deterministic for a given generator state.
  again = transforms.random_resized_crop(clip, np.random.default_rng(3), 32, (0.2, 0.6))
  np.testing.assert_array_equal(out, again)


def test_flip():
  clip = _clip()
  flipped = transforms.horizontal_flip(clip)
  np.testing.assert_array_equal(flipped[:, :, 0], clip[:, :, -1])
  np.testing.assert_array_equal(transforms.horizontal_flip(flipped), clip)
  outcomes = {transforms.random_horizontal_flip(clip, np.random.default_rng(s)) is clip
              for s in range(20)}
  assert outcomes == {True, False}  # both branches happen
  assert transforms.random_horizontal_flip(clip, np.random.default_rng(0), prob=0.0) is clip


def test_normalize_values():
  clip = np.array([0, 51, 255], np.uint8).reshape(1, 1, 1, 3)
  out = transforms.normalize(clip, mean=(0.0, 0.2, 0.5), std=(1.0, 0.5, 0.25))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out.ravel(), [0.0, 0.0, 2.0], atol=1e-6)


def test_spatial_crops_landscape_and_portrait():
  clip = _clip(h=8, w=14)
  one = transforms.spatial_crops(clip, 8, 1)
  assert one.shape == (1, 4, 8, 8, 3)
  np.testing.assert_array_equal(one[0], clip[:, :, 3:11])
  three = transforms.spatial_crops(clip, 8, 3)
  np.testing.assert_array_equal(three[0], clip[:, :, 0:8])
  np.testing.assert_array_equal(three[1], clip[:, :, 3:11])
  np.testing.assert_array_equal(three[2], clip[:, :, 6:14])
  portrait = _clip(h=14, w=8)
  three = transforms.spatial_crops(portrait, 8, 3)
  np.testing.assert_array_equal(three[0], portrait[:, 0:8])
  np.testing.assert_array_equal(three[2], portrait[:, 6:14])
  with pytest.raises(ValueError, match='1 or 3'):
    transforms.spatial_crops(clip, 8, 2)
