"""Object Detection Features (ODF, docs/method.md §4): per-box vectors and the per-video descriptor.

Per box (one detector), in this order:
  [ one-hot class in the shared label space (label_space)
  ; class scores of the box crop, l1-normalised (class_score_dim; omitted when 0)
  ; RBF(confidence) (Z)
  ; RBF(ymin), RBF(xmin), RBF(ymax), RBF(xmax) (4 Z; TF box order, normalised to [0, 1])
  ; RBF(frame index t / (tau - 1)) (Z) ]
With use_rbf=False each RBF block is the raw scalar (docs/method.md §9.7). With the paper's sizes
(171 classes, 1001 ImageNet scores, Z = 7) a box has 1214 dims with RBF and 1178 without.

The per-video descriptor is the multi-moment descriptor (moments.py) of all boxes with weights
1 / (J K_j); a video with no boxes gets zeros and present=False so the loss can mask it.
"""
import dataclasses
from typing import Optional

import numpy as np

from halluc_jax.descriptors import moments
from halluc_jax.descriptors.rbf import rbf_embed


@dataclasses.dataclass(frozen=True)
class Detections:
  """The boxes one detector returned for one video.

  Attributes:
    frame_index: int [N], 0-based frame of each box (in the sampled frame sequence).
    boxes: float [N, 4], (ymin, xmin, ymax, xmax) normalised to [0, 1].
    scores: float [N], detector confidences in [0, 1].
    class_ids: int [N], classes already mapped into the shared label space.
    class_scores: float [N, C] class scores of each box crop, or None.
  """
  frame_index: np.ndarray
  boxes: np.ndarray
  scores: np.ndarray
  class_ids: np.ndarray
  class_scores: Optional[np.ndarray] = None

  @classmethod
  def empty(cls, class_score_dim=0):
    """No boxes (a video where the detector found nothing)."""
    scores = np.zeros((0, class_score_dim), np.float64) if class_score_dim else None
    return cls(np.zeros((0,), np.int64), np.zeros((0, 4)), np.zeros((0,)),
               np.zeros((0,), np.int64), scores)

  def __len__(self):
    return int(np.asarray(self.frame_index).shape[0])


def odf_box_dim(label_space, class_score_dim=0, use_rbf=True, num_pivots=7):
  """Per-box dimension: label_space + class_score_dim + 6 scalar blocks of Z (or 1) each."""
  return label_space + class_score_dim + 6 * (num_pivots if use_rbf else 1)


def odf_dim(label_space, class_score_dim=0, use_rbf=True, num_pivots=7, n_eig=3):
  """Per-video ODF descriptor dimension: odf_box_dim * (4 + n_eig)."""
  return moments.multi_moment_dim(
      odf_box_dim(label_space, class_score_dim, use_rbf, num_pivots), n_eig)


def _checked(dets, num_frames, label_space, class_score_dim):
  """Validated float64/int arrays of `dets`; raises ValueError naming the bad field."""
  n = len(dets)
  frame_index = np.asarray(dets.frame_index).reshape(-1)
  boxes = np.asarray(dets.boxes, np.float64)
  if boxes.size == 0 and n == 0:
    boxes = boxes.reshape(0, 4)
  if boxes.ndim != 2 or boxes.shape[1] != 4:
    raise ValueError(f'Detections.boxes must be [N, 4], got shape {boxes.shape}.')
  scores = np.asarray(dets.scores, np.float64).reshape(-1)
  class_ids = np.asarray(dets.class_ids).reshape(-1)
  for name, arr in (('boxes', boxes), ('scores', scores), ('class_ids', class_ids)):
    if arr.shape[0] != n:
      raise ValueError(f'Detections.{name} has {arr.shape[0]} rows, frame_index has {n}.')
  if n and (frame_index.min() < 0 or frame_index.max() >= num_frames):
    raise ValueError(f'Detections.frame_index outside [0, {num_frames}).')
  if n and (class_ids.min() < 0 or class_ids.max() >= label_space):
    raise ValueError(f'Detections.class_ids outside the shared label space [0, {label_space}).')
  if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
    raise ValueError('Detections.boxes/scores contain non-finite values.')
  if n and (boxes.min() < -1e-6 or boxes.max() > 1 + 1e-6):
    raise ValueError('Detections.boxes must be normalised to [0, 1] (ymin, xmin, ymax, xmax).')
  class_scores = None
  if class_score_dim:
    if dets.class_scores is None:
      raise ValueError(f'Detections.class_scores is None but class_score_dim={class_score_dim}.')
    class_scores = np.asarray(dets.class_scores, np.float64)
    if class_scores.shape != (n, class_score_dim):
      raise ValueError(f'Detections.class_scores has shape {class_scores.shape}, expected '
                       f'[{n}, class_score_dim={class_score_dim}].')
  return frame_index.astype(np.int64), np.clip(boxes, 0, 1), scores, class_ids, class_scores


def odf_box_vectors(dets, num_frames, label_space, class_score_dim=0, use_rbf=True,
                    num_pivots=7, sigma=0.5):
  """Per-box ODF vectors.

  Args:
    dets: Detections of one detector in one video.
    num_frames: tau, the number of frames the detector ran on (frame indices are < tau).
    label_space: size of the shared one-hot label space across detectors.
    class_score_dim: size of the per-box class-score vector; 0 omits it.
    use_rbf: embed the scalars with RBF pivots (True) or keep them raw (False).
    num_pivots: Z.
    sigma: RBF width.

  Returns:
    float64 [N, odf_box_dim(...)].
  """
  if num_frames < 1:
    raise ValueError(f'odf_box_vectors needs num_frames >= 1, got {num_frames}.')
  frame_index, boxes, scores, class_ids, class_scores = _checked(
      dets, num_frames, label_space, class_score_dim)
  n = frame_index.shape[0]
  one_hot = np.zeros((n, label_space), np.float64)
  one_hot[np.arange(n), class_ids.astype(np.int64)] = 1.0
  parts = [one_hot]
  if class_scores is not None:
    l1 = np.abs(class_scores).sum(axis=1, keepdims=True)
    parts.append(class_scores / np.where(l1 > 0, l1, 1.0))
  time = frame_index / (num_frames - 1) if num_frames > 1 else np.zeros((n,), np.float64)
  scalars = np.concatenate([scores[:, None], boxes, time[:, None]], axis=1)  # [N, 6]
  if use_rbf:
    parts.append(rbf_embed(scalars, num_pivots, sigma).reshape(n, 6 * num_pivots))
  else:
    parts.append(scalars)
  return np.concatenate(parts, axis=1)


def odf_descriptor(dets, num_frames, label_space, class_score_dim=0, use_rbf=True, n_eig=3,
                   num_pivots=7, sigma=0.5, eps=1e-8, eig_sign='max_entry'):
  """Per-video, per-detector ODF multi-moment descriptor.

  Args:
    dets: Detections of one detector in one video.
    num_frames: tau, the number of frames the detector ran on.
    label_space: size of the shared label space.
    class_score_dim: size of the class-score vector (0 = omitted).
    use_rbf: RBF-embed the scalars (1214 vs 1178 per box with the paper's sizes).
    n_eig: n', leading singular vectors kept.
    num_pivots: Z.
    sigma: RBF width.
    eps: degenerate-variance threshold of the multi-moment descriptor.
    eig_sign: sign rule of the singular vectors (moments.EIG_SIGNS; 'time' orients them by
      the boxes' frame indices).

  Returns:
    (float64 [odf_dim(...)], present): present is False (and the vector zero) without boxes.
  """
  columns = odf_box_vectors(dets, num_frames, label_space, class_score_dim, use_rbf,
                            num_pivots, sigma)
  frame_index = np.asarray(dets.frame_index).reshape(-1)
  weights = moments.odf_frame_weights(frame_index)
  vec = moments.multi_moment(columns, weights, n_eig=n_eig, eps=eps, times=frame_index,
                             eig_sign=eig_sign)
  return vec, columns.shape[0] > 0
