"""SDF (docs/method.md §5): frame vector vs plain per-pixel loops, dimensions, orientation peaks."""
import math

import numpy as np
import pytest

from halluc_jax.descriptors import moments, sdf


def plain_frame(sal, gist, num_orient=12, num_spatial=5, sigma=0.5):
  """docs/method.md §5 written pixel by pixel; `sal` is already at working size, gist divides its sides."""
  h, w = sal.shape
  hist = np.zeros((num_orient, num_spatial, num_spatial))
  at = lambda r, c: sal[min(max(r, 0), h - 1), min(max(c, 0), w - 1)]  # edge-replicated
  for r in range(h):
    for c in range(w):
      gx = at(r, c + 1) - at(r, c - 1)
      gy = at(r + 1, c) - at(r - 1, c)
      amp = math.sqrt(gx * gx + gy * gy)
      theta = math.atan2(gy, gx) % (2 * math.pi)
      for o in range(num_orient):
        u = abs(theta / (2 * math.pi) - o / num_orient)
        dist = min(u, 1 - u)
        phi_o = math.exp(-dist ** 2 / sigma ** 2)
        for px in range(num_spatial):
          phi_x = math.exp(-(c / (w - 1) - px / (num_spatial - 1)) ** 2 / sigma ** 2)
          for py in range(num_spatial):
            phi_y = math.exp(-(r / (h - 1) - py / (num_spatial - 1)) ** 2 / sigma ** 2)
            hist[o, px, py] += amp * phi_o * phi_x * phi_y
  hist = hist.reshape(-1)
  hist /= math.sqrt(sum(v * v for v in hist))
  bh, bw = h // gist, w // gist
  small = np.array([[sal[i * bh:(i + 1) * bh, j * bw:(j + 1) * bw].mean() for j in range(gist)]
                    for i in range(gist)]).reshape(-1)
  return np.concatenate([hist, small / sum(abs(v) for v in small)])


@pytest.mark.parametrize('shape,gist', [((16, 20), 4), ((12, 12), 3)])
def test_frame_matches_plain_loops(shape, gist):
  sal = np.random.default_rng(0).random(shape)
  got = sdf.sdf_frame(sal, work_size=None, gist=gist)
  assert got.shape == (300 + gist * gist,) and got.dtype == np.float64
  np.testing.assert_allclose(got, plain_frame(sal, gist), rtol=2e-5, atol=1e-7)


def test_paper_dimensions():
  assert sdf.sdf_frame_dim() == 556 and sdf.sdf_dim(n_eig=3) == 556 * 7
  maps = np.random.default_rng(1).random((5, 128, 160))
  assert sdf.sdf_frame(maps[0]).shape == (556,)
  vec = sdf.sdf_descriptor(maps)
  assert vec.shape == (556 * 7,) and vec.dtype == np.float64 and np.all(np.isfinite(vec))


def test_descriptor_is_multi_moment_of_frames():
  maps = np.random.default_rng(2).random((4, 40, 30))
  frames = np.stack([sdf.sdf_frame(m, work_size=32) for m in maps])
  np.testing.assert_allclose(sdf.sdf_descriptor(maps, work_size=32),
                             moments.multi_moment(frames), rtol=1e-12)
  same = sdf.sdf_descriptor(np.stack([maps[0]] * 3), work_size=32)
  np.testing.assert_allclose(same[:556], frames[0] / np.linalg.norm(frames[0]), rtol=1e-12)
  assert not same[556:].any()  # no variation across frames: only the mean block


@pytest.mark.parametrize('ramp,expected_bin', [('x', 0), ('y', 3), ('-x', 6), ('-y', 9)])
def test_orientation_peak(ramp, expected_bin):
  rows, cols = np.mgrid[0:64, 0:64].astype(np.float64)
  sal = {'x': cols, 'y': rows, '-x': -cols, '-y': -rows}[ramp] + 64.0
  hist = sdf.sdf_frame(sal, work_size=None)[:300].reshape(12, 5, 5)
  assert np.argmax(hist.sum(axis=(1, 2))) == expected_bin


def test_spatial_layout_is_orientation_x_y():
  sal = np.zeros((50, 50))
  sal[:, 5:] = 1.0  # one vertical edge near the left border, along the full height
  hist = sdf.sdf_frame(sal, work_size=None)[:300].reshape(12, 5, 5)
  assert np.argmax(hist.sum(axis=(0, 2))) == 0  # x pivots: the left one dominates
  by_y = hist.sum(axis=(0, 1))
  np.testing.assert_allclose(by_y, by_y[::-1], rtol=1e-5)  # symmetric along y


def test_scale_invariance_and_flat_maps():
  sal = np.random.default_rng(3).random((112, 112))
  np.testing.assert_allclose(sdf.sdf_frame(5.0 * sal), sdf.sdf_frame(sal), rtol=1e-5, atol=1e-8)
  flat = sdf.sdf_frame(np.full((60, 80), 0.3))
  assert not flat[:300].any()
  np.testing.assert_allclose(flat[300:], 1 / 256)
  assert not sdf.sdf_frame(np.zeros((60, 80))).any()


def test_working_resolution():
  sal = np.random.default_rng(4).random((224, 224))
  area_mean = sal.reshape(112, 2, 112, 2).mean(axis=(1, 3))  # area resize by an integer factor
  np.testing.assert_allclose(sdf.sdf_frame(sal)[:300],
                             sdf.sdf_frame(area_mean, work_size=None)[:300], rtol=1e-4, atol=1e-7)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match='2-D'):
    sdf.sdf_frame(np.zeros(10))
  with pytest.raises(ValueError, match='non-finite'):
    sdf.sdf_frame(np.full((8, 8), np.nan))
  with pytest.raises(ValueError, match='J>=1'):
    sdf.sdf_descriptor(np.zeros((0, 8, 8)))
