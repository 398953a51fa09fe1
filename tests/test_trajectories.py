"""Dense trajectories: orientation votes, cell sums, pruning, tracking and tube descriptors
against direct numpy (explicit loops over pixels and frames)."""
import math

import cv2
import numpy as np
import pytest

from halluc_jax.descriptors import trajectories as tr
from halluc_jax.descriptors.sdf import image_gradients


def _votes_by_loop(dx, dy, bins, zero_threshold=None):
  out = np.zeros(dx.shape + (bins + (zero_threshold is not None),))
  for r in range(dx.shape[0]):
    for c in range(dx.shape[1]):
      mag = math.hypot(dx[r, c], dy[r, c])
      if zero_threshold is not None and mag <= zero_threshold:
        out[r, c, bins] = 1.0
        continue
      pos = math.atan2(dy[r, c], dx[r, c]) / (2 * math.pi) * bins
      low = math.floor(pos)
      out[r, c, low % bins] += mag * (1 - (pos - low))
      out[r, c, (low + 1) % bins] += mag * (pos - low)
  return out


@pytest.mark.parametrize('zero_threshold', [None, 0.4])
def test_orientation_maps_match_per_pixel_loop(zero_threshold):
  rng = np.random.default_rng(0)
  dx, dy = rng.normal(size=(2, 7, 9)).astype(np.float32)
  got = tr.orientation_maps(dx, dy, 8, zero_threshold)
  np.testing.assert_allclose(got, _votes_by_loop(dx, dy, 8, zero_threshold), atol=1e-5)


def test_rightward_vote_goes_to_bin_zero_and_down_to_bin_two():
  maps = tr.orientation_maps(np.array([[2.0, 0.0]]), np.array([[0.0, 3.0]]))
  np.testing.assert_allclose(maps[0, 0], [2, 0, 0, 0, 0, 0, 0, 0], atol=1e-6)
  np.testing.assert_allclose(maps[0, 1], [0, 0, 3, 0, 0, 0, 0, 0], atol=1e-6)


def test_cell_sums_match_slicing():
  rng = np.random.default_rng(1)
  maps = rng.random((20, 24, 3))
  points = np.array([[10.2, 9.7], [0.0, 0.0], [23.0, 19.0], [5.6, 14.4]])
  got = tr.cell_sums(tr.integral(maps), points, 8, 2)
  for m, (x, y) in enumerate(points):
    x0 = min(max(int(round(x)) - 4, 0), 24 - 8)  # shifted inside the frame
    y0 = min(max(int(round(y)) - 4, 0), 20 - 8)
    for cy in range(2):
      for cx in range(2):
        want = maps[y0 + 4 * cy:y0 + 4 * cy + 4, x0 + 4 * cx:x0 + 4 * cx + 4].sum((0, 1))
        np.testing.assert_allclose(got[m, 2 * cy + cx], want, rtol=1e-10)


def test_pruning_follows_idt_rules():
  steps = np.zeros((4, 15, 2))
  steps[0, :, 0] = 1.0  # 1 px / frame rightwards: valid
  steps[1, :, 0] = 0.1  # static: std of x and y below sqrt(3)
  steps[2, :, 0] = 15.0  # erratic: std of x above 50
  steps[3, :, 0] = 0.2
  steps[3, 7, 0] = 25.0  # one jump > 20 px and > 70% of the length
  points = np.concatenate([np.zeros((4, 1, 2)), np.cumsum(steps, axis=1)], axis=1)
  np.testing.assert_array_equal(tr.valid_tracks(points, math.sqrt(3), 50.0, 20.0),
                                [True, False, False, False])


def test_trajectory_shape_is_normalised_displacements():
  points = np.array([[[0, 0], [3, 4], [3, 4], [6, 8]]], float)
  np.testing.assert_allclose(tr.trajectory_shape(points), [[0.3, 0.4, 0, 0, 0.3, 0.4]])


def _texture(size, seed=0):
  rng = np.random.default_rng(seed)
  noise = rng.random((size, size)).astype(np.float32)
  return cv2.GaussianBlur(noise, (0, 0), 2.0)


def _translating_video(num_frames=12, size=48, shift=1):
  big = _texture(size + num_frames * shift + 8)
  big = ((big - big.min()) / (big.max() - big.min()) * 255).astype(np.uint8)
  # The content moves right by `shift` px per frame: frame t shows big[., x - t * shift].
  start = num_frames * shift
  return np.stack([big[4:4 + size, start - t * shift:start - t * shift + size]
                   for t in range(num_frames)])


def test_translation_gives_rightward_tracks_and_hof():
  frames = _translating_video()
  desc, points, starts = tr.dense_trajectories(frames, track_length=6, grid_step=6,
                                               patch_size=8, min_var=0.5)
  assert len(points) > 10
  assert set(desc) == set(tr.PARTS)
  for part, dims in tr.part_dims(6).items():
    assert desc[part].shape == (len(points), dims)
  steps = np.diff(points, axis=1)
  # Interior tracks (patches away from the border) move ~1 px right per frame.
  interior = (points[:, :, 0].min(1) > 10) & (points[:, :, 0].max(1) < 38)
  assert interior.sum() > 5
  np.testing.assert_allclose(steps[interior].mean((0, 1)), [1.0, 0.0], atol=0.15)
  np.testing.assert_allclose(desc['traj'][interior][:, 0::2].mean(), 1 / 6, atol=0.03)
  # HOF: rightward bin 0 dominates the 9 bins of each cell (after RootSIFT: sqrt of shares).
  hof = desc['hof'][interior].reshape(-1, 12, 9) ** 2
  assert np.all(hof.sum(0).argmax(1) == 0)
  assert np.all(starts + 6 <= len(frames) - 1)


def test_static_and_short_clips_give_no_trajectories():
  still = np.repeat(_translating_video(1)[:1], 10, axis=0)
  _, points, _ = tr.dense_trajectories(still, track_length=6, patch_size=8)
  assert len(points) == 0
  desc, points, _ = tr.dense_trajectories(_translating_video(6), track_length=6, patch_size=8,
                                          min_var=0.5)
  assert len(points) == 0 and desc['hog'].shape == (0, 96)


def test_tube_hog_matches_direct_computation():
  """Recomputes each trajectory's HOG from its points by explicit per-frame patch loops."""
  frames = _translating_video(num_frames=10)
  length, patch, nxy, nt = 6, 8, 2, 3
  desc, points, starts = tr.dense_trajectories(frames, track_length=length, grid_step=8,
                                               patch_size=patch, min_var=0.5)
  assert len(points)
  height, width = frames.shape[1:]
  for m in range(min(len(points), 6)):
    hist = np.zeros((nt, nxy, nxy, 8))
    for i in range(length):
      gx, gy = image_gradients(frames[starts[m] + i])
      votes = _votes_by_loop(gx, gy, 8)
      x, y = np.round(points[m, i]).astype(int)
      x0, y0 = min(max(x - patch // 2, 0), width - patch), min(max(y - patch // 2, 0), height - patch)
      cell = patch // nxy
      for cy in range(nxy):
        for cx in range(nxy):
          hist[i // (length // nt), cy, cx] += votes[y0 + cy * cell:y0 + (cy + 1) * cell,
                                                     x0 + cx * cell:x0 + (cx + 1) * cell].sum((0, 1))
    # Compare the L1 shares (RootSIFT squared): the square root would magnify float32 votes
    # of ~1e-7 that a pixel exactly on a bin boundary leaves in the neighbouring bin.
    np.testing.assert_allclose(desc['hog'][m].astype(np.float64) ** 2,
                               hist.reshape(-1) / hist.sum(), atol=1e-6)
