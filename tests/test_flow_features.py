"""HOF/MBH flow histograms vs plain loops, OpenCV flow on a translating pattern, registry."""
import math

import cv2
import numpy as np
import pytest

from halluc_jax.descriptors import flow, moments


def plain_histograms(dx, dy, grid, bins):
  height, width = dx.shape
  hist = np.zeros(grid + (bins,))
  for r in range(height):
    for c in range(width):
      mag = math.hypot(dx[r, c], dy[r, c])
      pos = (math.atan2(dy[r, c], dx[r, c]) % (2 * math.pi)) / (2 * math.pi / bins)
      low = math.floor(pos)
      cell = (r * grid[0] // height, c * grid[1] // width)
      hist[cell + (low % bins,)] += mag * (1 - (pos - low))
      hist[cell + ((low + 1) % bins,)] += mag * (pos - low)
  return hist


def plain_gradients(img):
  h, w = img.shape
  at = lambda r, c: float(img[min(max(r, 0), h - 1), min(max(c, 0), w - 1)])
  gx = np.array([[at(r, c + 1) - at(r, c - 1) for c in range(w)] for r in range(h)])
  gy = np.array([[at(r + 1, c) - at(r - 1, c) for c in range(w)] for r in range(h)])
  return gx, gy


def texture(size=160, seed=0):
  noise = np.random.default_rng(seed).random((size, size)).astype(np.float32) * 255
  smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
  return cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def test_histograms_match_plain_loops():
  rng = np.random.default_rng(0)
  dx, dy = rng.normal(size=(2, 10, 12)).astype(np.float32)
  got = flow.orientation_histograms(dx, dy, (2, 3), 8)
  np.testing.assert_allclose(got, plain_histograms(dx, dy, (2, 3), 8), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got.sum(), np.hypot(dx, dy).sum(), rtol=1e-5)  # mass preserved


def test_frame_features_match_plain_composition():
  field = np.random.default_rng(1).normal(size=(9, 8, 2)).astype(np.float32)
  got = flow.flow_frame_features(field, grid=(3, 2), bins=6, static_floor=0.1)
  assert got.shape == (flow.flow_frame_dim((3, 2), 6),) == (108,)
  u, v = field[..., 0], field[..., 1]
  blocks = [plain_histograms(u, v, (3, 2), 6), plain_histograms(*plain_gradients(u), (3, 2), 6),
            plain_histograms(*plain_gradients(v), (3, 2), 6)]
  expect = np.concatenate([(b / (b.sum() + 0.1 * 72)).reshape(-1) for b in blocks])
  np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('method', flow.FLOW_METHODS)
@pytest.mark.parametrize('shift,expected_bin', [((3, 0), 0), ((0, 3), 2), ((-3, 0), 4),
                                                ((0, -3), 6), ((2, 2), 1)])
def test_translating_pattern_peaks_in_the_right_bin(method, shift, expected_bin):
  tex = texture()
  sx, sy = shift
  prev = tex[20:140, 20:140]
  nxt = tex[20 - sy:140 - sy, 20 - sx:140 - sx]  # content moves by (+sx, +sy)
  field = flow.dense_flow(prev, nxt, method)
  assert field.shape == (120, 120, 2) and field.dtype == np.float32
  np.testing.assert_allclose(np.median(field.reshape(-1, 2), axis=0), shift, atol=0.25)
  feats = flow.flow_frame_features(field)
  hof = feats[:128].reshape(4, 4, 8)
  assert np.all(np.argmax(hof, axis=-1) == expected_bin)  # in every cell
  assert hof.sum() > 0.9  # real motion: HOF is close to a unit-mass distribution
  assert feats[128:].sum() < 0.5 * hof.sum()  # no motion boundaries in a rigid translation


def test_motion_boundary_shows_in_mbh_only_where_it_is():
  field = np.zeros((64, 64, 2), np.float32)
  field[:, 32:, 0] = 3.0  # right half moves right, left half is static
  feats = flow.flow_frame_features(field, grid=(4, 4), bins=8)
  hof, mbhx, mbhy = feats[:128].reshape(4, 4, 8), feats[128:256].reshape(4, 4, 8), feats[256:]
  assert np.all(hof[:, 2:, 0] > 0) and not hof[:, :2].any() and not hof[..., 1:].any()
  # du/dx > 0 at the boundary (columns 31, 32), which lie in grid columns 1 and 2.
  assert np.all(mbhx[:, 1:3, 0] > 0) and not mbhx[:, [0, 3]].any() and not mbhx[..., 1:].any()
  assert not mbhy.any()


def test_static_and_near_static_frames():
  assert not flow.flow_frame_features(np.zeros((32, 32, 2))).any()
  noise = np.random.default_rng(2).normal(scale=0.005, size=(32, 32, 2))
  assert flow.flow_frame_features(noise)[:128].sum() < 0.1  # damped, not blown up to 1


def test_descriptor_and_registry(monkeypatch):
  rng = np.random.default_rng(3)
  flows = rng.normal(size=(5, 24, 24, 2)).astype(np.float32)
  feature = flow.make_flow_feature('hof_mbh', grid=(2, 2), bins=6)
  vec = feature.compute(flows)
  assert feature.dim == vec.shape[0] == 3 * 2 * 2 * 6 * 7 and vec.dtype == np.float64
  frames = np.stack([flow.flow_frame_features(f, (2, 2), 6) for f in flows])
  np.testing.assert_allclose(vec, moments.multi_moment(frames), rtol=1e-12)
  assert flow.make_flow_feature().dim == flow.flow_descriptor(flows).shape[0] == 384 * 7
  # A learned feature registers beside the histograms without other changes.
  mean_flow = flow.FlowFeature('mean_flow', 2, lambda f: np.asarray(f).mean(axis=(0, 1, 2)))
  monkeypatch.setitem(flow.FLOW_FEATURES, 'mean_flow', lambda: mean_flow)
  np.testing.assert_allclose(flow.make_flow_feature('mean_flow').compute(flows),
                             flows.mean(axis=(0, 1, 2)))
  with pytest.raises(ValueError, match='registered'):
    flow.make_flow_feature('i3d_flow')


def test_video_flows_on_rgb_frames():
  tex = texture(seed=4)
  frames = np.stack([np.repeat(tex[20:84, 20 - k:84 - k, None], 3, -1) for k in range(3)])
  flows = flow.video_flows(frames, 'farneback')
  assert flows.shape == (2, 64, 64, 2)
  np.testing.assert_allclose(np.median(flows[..., 0]), 1.0, atol=0.2)


def test_bad_inputs_raise():
  frame = np.zeros((16, 16), np.uint8)
  with pytest.raises(ValueError, match='uint8'):
    flow.dense_flow(frame.astype(np.float32), frame)
  with pytest.raises(ValueError, match='shapes differ'):
    flow.dense_flow(frame, frame[:8])
  with pytest.raises(ValueError, match='unknown method'):
    flow.dense_flow(frame, frame, 'ldof')
  with pytest.raises(ValueError, match='at least 2 frames'):
    flow.video_flows(frame[None])
  with pytest.raises(ValueError, match=r'\[H, W, 2\]'):
    flow.flow_frame_features(np.zeros((16, 16, 3)))
  with pytest.raises(ValueError, match='non-finite'):
    flow.flow_frame_features(np.full((16, 16, 2), np.nan))
  with pytest.raises(ValueError, match='J>=1'):
    flow.flow_descriptor(np.zeros((0, 8, 8, 2)))


def test_camera_median_cancels_a_panning_camera_in_hof_only():
  # The camera pans right by 2 px everywhere; one object, in the top-left grid cell, rises 3 px.
  field = np.zeros((32, 32, 2), np.float32)
  field[..., 0] = 2.0
  field[2:6, 2:6] = (2.0, -3.0)  # camera + object
  grid, bins = (4, 4), 8
  size = grid[0] * grid[1] * bins
  raw = flow.flow_frame_features(field, grid, bins, static_floor=0.0)
  comp = flow.flow_frame_features(field, grid, bins, static_floor=0.0, camera='median')
  hof_raw = raw[:size].reshape(grid + (bins,))
  hof_comp = comp[:size].reshape(grid + (bins,))
  assert hof_raw[..., 0].sum() > 0.9  # without compensation HOF is mostly 'rightward'
  up = 3 * bins // 4  # bin of (0, -3): atan2(-3, 0) = -pi/2
  assert hof_comp[0, 0, up] == pytest.approx(1.0)  # only the object's own motion is left
  assert np.count_nonzero(hof_comp) == 1
  np.testing.assert_allclose(comp[size:], raw[size:])  # MBH blocks are untouched
  # u is constant, so its MBH block has no magnitude: zeros, not 0/0 (static_floor=0 here).
  assert np.all(np.isfinite(comp)) and not np.any(comp[size:2 * size])
  with pytest.raises(ValueError, match='camera'):
    flow.flow_frame_features(field, grid, bins, camera='homography')
