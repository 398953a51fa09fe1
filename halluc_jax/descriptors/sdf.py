"""Saliency Detection Features (SDF, docs/method.md §5).

Per saliency frame S (resized to work_size x work_size, docs/method.md §9.8):
  1. gradients with [-1, 0, 1] and its transpose (edge-replicated borders), amplitude
     A = sqrt(gx^2 + gy^2) and orientation theta = atan2(gy, gx) in [0, 2 pi);
  2. spatio-angular histogram sum_pixels A * circRBF(theta / 2 pi; 12) (x) RBF(x; 5) (x) RBF(y; 5)
     with x = col / (W - 1), y = row / (H - 1): 12 * 5 * 5 = 300 values, flattened in that
     (orientation, x, y) order, then l2-normalised;
  3. gist: S area-resized to 16 x 16, l1-normalised (256 values).
The frame vector is the 556-d concatenation; per video the multi-moment descriptor (moments.py,
centred columns, weights 1/J) gives 556 * (4 + n') values.
"""
import functools

import cv2
import numpy as np

from halluc_jax.descriptors import moments
from halluc_jax.descriptors.rbf import rbf_embed


def sdf_frame_dim(gist=16, num_orient=12, num_spatial=5):
  """Per-frame SDF dimension: num_orient * num_spatial^2 + gist^2 (556 by default)."""
  return num_orient * num_spatial ** 2 + gist ** 2


def sdf_dim(n_eig=3, **frame_kwargs):
  """Per-video SDF descriptor dimension: sdf_frame_dim * (4 + n_eig)."""
  return moments.multi_moment_dim(sdf_frame_dim(**frame_kwargs), n_eig)


@functools.lru_cache(maxsize=16)
def _spatial_pivots(height, width, num_spatial, sigma):
  """RBF embeddings of the row and column coordinates: ([H, P], [W, P])."""
  rows = rbf_embed(np.arange(height) / max(height - 1, 1), num_spatial, sigma)
  cols = rbf_embed(np.arange(width) / max(width - 1, 1), num_spatial, sigma)
  return rows.astype(np.float32), cols.astype(np.float32)


def _resize(image, size):
  """cv2 resize to size x size in float64: area averaging to shrink, bilinear to enlarge."""
  if image.shape == (size, size):
    return image
  shrink = size <= min(image.shape)
  return cv2.resize(image, (size, size),
                    interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def image_gradients(image):
  """float32 (gx, gy) with the [-1, 0, 1] kernel and its transpose; borders edge-replicated.

  x runs along columns (rightwards), y along rows (downwards), as in image coordinates.
  """
  padded = np.pad(np.asarray(image, np.float32), 1, mode='edge')
  return padded[1:-1, 2:] - padded[1:-1, :-2], padded[2:, 1:-1] - padded[:-2, 1:-1]


def gradient_histogram(saliency, num_orient=12, num_spatial=5, sigma=0.5):
  """The un-normalised spatio-angular gradient histogram [num_orient * num_spatial^2], float64.

  The per-pixel work runs in float32 (4x faster than float64 for the 10^5 x 12 orientation
  embedding; the histogram is l2-normalised afterwards, so 1e-7 relative error is immaterial).
  """
  gx, gy = image_gradients(saliency)
  amplitude = np.sqrt(gx * gx + gy * gy)
  turn = np.arctan2(gy, gx) * np.float32(0.5 / np.pi)  # orientation / 2 pi, in [-1/2, 1/2]
  orient = rbf_embed(turn, num_orient, sigma, circular=True)  # [H, W, O]; periodic in turn
  orient *= amplitude[..., None]
  rows, cols = _spatial_pivots(*saliency.shape, num_spatial, sigma)
  by_x = np.matmul(orient.transpose(0, 2, 1), cols)  # [H, O, X]
  return np.einsum('rox,ry->oxy', by_x, rows).astype(np.float64).reshape(-1)


def sdf_frame(saliency_map, work_size=112, gist=16, num_orient=12, num_spatial=5, sigma=0.5):
  """The 556-d SDF vector of one saliency map.

  Args:
    saliency_map: float [H, W] saliency (any non-negative scale).
    work_size: side of the square map the gradients are computed on; None keeps [H, W].
    gist: side of the intensity gist.
    num_orient: circular orientation pivots.
    num_spatial: pivots per spatial axis.
    sigma: RBF width.

  Returns:
    float64 [num_orient * num_spatial^2 + gist^2].
  """
  saliency = np.asarray(saliency_map, np.float64)
  if saliency.ndim != 2 or min(saliency.shape) < 2:
    raise ValueError(f'sdf_frame expects a 2-D saliency map of at least 2x2, got {saliency.shape}.')
  if not np.all(np.isfinite(saliency)):
    raise ValueError('sdf_frame got non-finite saliency values.')
  work = saliency if work_size is None else _resize(saliency, work_size)
  hist = gradient_histogram(work, num_orient, num_spatial, sigma)
  hist_norm = np.linalg.norm(hist)
  small = _resize(saliency, gist).reshape(-1)
  small_l1 = np.abs(small).sum()
  return np.concatenate([hist / hist_norm if hist_norm > 0 else hist,
                         small / small_l1 if small_l1 > 0 else small])


def sdf_descriptor(maps, n_eig=3, eps=1e-8, eig_sign='max_entry', **frame_kwargs):
  """Per-video SDF multi-moment descriptor.

  Args:
    maps: float [J, H, W] saliency maps of the video's frames (J >= 1).
    n_eig: n-dagger, leading singular vectors kept.
    eps: degenerate-variance threshold of the multi-moment descriptor.
    eig_sign: sign rule of the singular vectors (moments.EIG_SIGNS; 'time': frame order).
    **frame_kwargs: forwarded to sdf_frame (work_size, gist, num_orient, num_spatial, sigma).

  Returns:
    float64 [sdf_frame_dim * (4 + n_eig)].
  """
  maps = np.asarray(maps)
  if maps.ndim != 3 or maps.shape[0] == 0:
    raise ValueError(f'sdf_descriptor expects maps [J>=1, H, W], got shape {maps.shape}.')
  frames = np.stack([sdf_frame(m, **frame_kwargs) for m in maps])
  weights = np.full((frames.shape[0],), 1.0 / frames.shape[0])
  return moments.multi_moment(frames, weights, n_eig=n_eig, eps=eps,
                              times=np.arange(frames.shape[0]), eig_sign=eig_sign)
