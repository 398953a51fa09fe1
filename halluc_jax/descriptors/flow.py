"""Optical-flow features (OFF): HOF/MBH-style flow histograms, not I3D features.

docs/method.md §6 uses the 1024-d I3D flow-stream feature on LDOF flow. No pretrained flow network can
be downloaded here, so the default OFF target is a hand-crafted descriptor of dense OpenCV flow
(DIS or Farneback), in the spirit of the IDT HOF and MBH descriptors:

  * HOF-like: per spatial grid cell, a histogram of flow orientation weighted by flow magnitude;
  * MBHx-/MBHy-like: the same histogram of the orientation of the gradient of u (resp. v),
    weighted by the gradient magnitude, i.e. motion boundaries;

each block normalised per frame, then aggregated over the video by the multi-moment descriptor.

Orientation bins have centres at k * 2 pi / bins (bin 0 = rightward, bin bins/4 = downward in
image coordinates) and each pixel is split linearly between its two nearest bins. Per frame each
block is divided by (sum of its magnitudes + static_floor * pixels): a frame with real motion
gives an orientation distribution summing to ~1, a near-static frame stays near zero instead of
having its flow noise blown up to unit mass.

`FLOW_FEATURES` maps a feature name to a factory returning a `FlowFeature` (dim + compute on a
video's flow stack), so a learned flow feature (e.g. an I3D flow stream) can be registered
beside 'hof_mbh' without touching the extraction code.
"""
import dataclasses
from typing import Callable

import cv2
import numpy as np

from halluc_jax.descriptors import moments
from halluc_jax.descriptors.sdf import image_gradients

FLOW_METHODS = ('dis', 'farneback')
CAMERA_MODES = ('none', 'median')


def _to_gray_uint8(frame, name):
  frame = np.asarray(frame)
  if frame.dtype != np.uint8:
    raise ValueError(f'dense_flow: {name} must be uint8, got {frame.dtype}.')
  if frame.ndim == 3 and frame.shape[-1] == 3:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
  if frame.ndim != 2:
    raise ValueError(f'dense_flow: {name} must be [H, W] gray or [H, W, 3] RGB, got {frame.shape}.')
  return np.ascontiguousarray(frame)  # cv2's DIS asserts a continuous buffer


def dense_flow(prev_frame, next_frame, method='dis'):
  """Dense optical flow from prev_frame to next_frame with OpenCV.

  Args:
    prev_frame: uint8 [H, W] gray or [H, W, 3] RGB.
    next_frame: same shape as prev_frame.
    method: 'dis' (DIS, medium preset) or 'farneback'.

  Returns:
    float32 [H, W, 2], (u, v) = displacement in pixels along x (columns) and y (rows).
  """
  prev_gray = _to_gray_uint8(prev_frame, 'prev_frame')
  next_gray = _to_gray_uint8(next_frame, 'next_frame')
  if prev_gray.shape != next_gray.shape:
    raise ValueError(f'dense_flow: frame shapes differ, {prev_gray.shape} vs {next_gray.shape}.')
  if method == 'dis':
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(prev_gray, next_gray, None)
  elif method == 'farneback':
    flow = cv2.calcOpticalFlowFarneback(prev_gray, next_gray, None, pyr_scale=0.5, levels=3,
                                        winsize=15, iterations=3, poly_n=5, poly_sigma=1.2,
                                        flags=0)
  else:
    raise ValueError(f'dense_flow: unknown method {method!r}; expected one of {FLOW_METHODS}.')
  return np.asarray(flow, np.float32)


def video_flows(frames, method='dis'):
  """Flow between consecutive frames: [T, H, W(, 3)] uint8 -> float32 [T - 1, H, W, 2]."""
  frames = np.asarray(frames)
  if frames.shape[0] < 2:
    raise ValueError(f'video_flows needs at least 2 frames, got {frames.shape[0]}.')
  return np.stack([dense_flow(a, b, method) for a, b in zip(frames[:-1], frames[1:])])


def orientation_histograms(dx, dy, grid=(4, 4), bins=8):
  """Magnitude-weighted, linearly interpolated orientation histograms per grid cell.

  Args:
    dx: [H, W] x components (rightwards).
    dy: [H, W] y components (downwards).
    grid: (rows, cols) of spatial cells; pixel (r, c) is in cell (r * rows // H, c * cols // W).
    bins: orientation bins over [0, 2 pi), centres at k * 2 pi / bins.

  Returns:
    float64 [rows, cols, bins] (per-pixel maths in float32, accumulation in float64); the
    total equals the sum of the magnitudes.
  """
  height, width = dx.shape
  rows, cols = grid
  dx = np.asarray(dx, np.float32)
  dy = np.asarray(dy, np.float32)
  magnitude = np.sqrt(dx * dx + dy * dy)
  # Position in bin units, in [-bins/2, bins/2]; the integer modulo below wraps negatives.
  position = np.arctan2(dy, dx) * np.float32(bins / (2 * np.pi))
  low = np.floor(position)
  frac = position - low
  low = low.astype(np.int64) % bins
  cell = ((np.arange(height) * rows // height)[:, None] * cols
          + (np.arange(width) * cols // width)[None, :]) * bins
  hist = np.bincount((cell + low).ravel(), (magnitude * (1 - frac)).ravel(), rows * cols * bins)
  hist += np.bincount((cell + (low + 1) % bins).ravel(), (magnitude * frac).ravel(),
                      rows * cols * bins)
  return hist.reshape(rows, cols, bins)


def flow_frame_dim(grid=(4, 4), bins=8):
  """Per-frame HOF + MBHx + MBHy length: 3 * rows * cols * bins."""
  return 3 * grid[0] * grid[1] * bins


def flow_frame_features(flow, grid=(4, 4), bins=8, static_floor=0.1, camera='none'):
  """HOF, MBHx and MBHy histograms of one flow field.

  With camera='median' the frame's median flow (the dominant, camera-induced translation) is
  subtracted before the HOF block, as improved dense trajectories cancel camera motion before
  their HOF (docs/method.md §6); the MBH blocks, gradients of the flow, do not change.

  Args:
    flow: float [H, W, 2] (u, v) in pixels.
    grid: spatial cells (rows, cols).
    bins: orientation bins.
    static_floor: mean magnitude (pixels, or pixels per pixel for MBH) per block below which the
      block is damped towards zero rather than normalised to unit mass.
    camera: 'none' or 'median' (subtract the median flow before HOF).

  Returns:
    float64 [3 * rows * cols * bins] = [HOF; MBHx; MBHy], each block flattened (row, col, bin).
  """
  flow = np.asarray(flow, np.float32)
  if flow.ndim != 3 or flow.shape[-1] != 2 or min(flow.shape[:2]) < max(grid):
    raise ValueError(f'flow_frame_features expects flow [H, W, 2] with H, W >= {max(grid)}, '
                     f'got {flow.shape}.')
  if not np.all(np.isfinite(flow)):
    raise ValueError('flow_frame_features got non-finite flow values.')
  if camera not in CAMERA_MODES:
    raise ValueError(f'flow camera={camera!r}: expected one of {CAMERA_MODES}.')
  u, v = flow[..., 0], flow[..., 1]
  hu, hv = (u - np.median(u), v - np.median(v)) if camera == 'median' else (u, v)
  blocks = [orientation_histograms(hu, hv, grid, bins),
            orientation_histograms(*image_gradients(u), grid, bins),
            orientation_histograms(*image_gradients(v), grid, bins)]
  floor = static_floor * u.size
  # A block without any magnitude and no floor stays all zeros rather than 0/0 = NaN.
  return np.concatenate([(b / max(b.sum() + floor, np.finfo(np.float32).tiny)).reshape(-1)
                         for b in blocks])


def flow_descriptor(flows, grid=(4, 4), bins=8, static_floor=0.1, n_eig=3, eps=1e-8,
                    eig_sign='max_entry', camera='none'):
  """Multi-moment descriptor of a video's per-frame HOF/MBH features (weights 1/J).

  Args:
    flows: float [J, H, W, 2], J >= 1 flow fields of one video.
    grid: spatial cells.
    bins: orientation bins.
    static_floor: see flow_frame_features.
    n_eig: leading singular vectors kept.
    eps: degenerate-variance threshold of the multi-moment descriptor.
    eig_sign: sign rule of the singular vectors (moments.EIG_SIGNS; 'time': flow order).
    camera: see flow_frame_features.

  Returns:
    float64 [flow_frame_dim(grid, bins) * (4 + n_eig)].
  """
  flows = np.asarray(flows)
  if flows.ndim != 4 or flows.shape[0] == 0:
    raise ValueError(f'flow_descriptor expects flows [J>=1, H, W, 2], got shape {flows.shape}.')
  frames = np.stack([flow_frame_features(f, grid, bins, static_floor, camera) for f in flows])
  return moments.multi_moment(frames, np.full((len(frames),), 1.0 / len(frames)), n_eig, eps,
                              times=np.arange(len(frames)), eig_sign=eig_sign)


@dataclasses.dataclass(frozen=True)
class FlowFeature:
  """A per-video flow feature: `compute(flows [J, H, W, 2]) -> float64 [dim]`."""
  name: str
  dim: int
  compute: Callable[[np.ndarray], np.ndarray]


def hof_mbh_feature(grid=(4, 4), bins=8, static_floor=0.1, n_eig=3, eig_sign='max_entry',
                    camera='none'):
  """The HOF/MBH flow-histogram feature with its multi-moment aggregation."""
  grid = tuple(int(g) for g in grid)
  return FlowFeature(
      name='hof_mbh', dim=moments.multi_moment_dim(flow_frame_dim(grid, bins), n_eig),
      compute=lambda flows: flow_descriptor(flows, grid, bins, static_floor, n_eig,
                                            eig_sign=eig_sign, camera=camera))


FLOW_FEATURES = {'hof_mbh': hof_mbh_feature}


def make_flow_feature(name='hof_mbh', **params):
  """The registered flow feature `name` built with `params` (e.g. grid, bins, n_eig)."""
  if name not in FLOW_FEATURES:
    raise ValueError(f'Unknown flow feature {name!r}; registered: {sorted(FLOW_FEATURES)}.')
  return FLOW_FEATURES[name](**params)
