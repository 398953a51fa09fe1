"""Pure numpy metrics for video classification and hallucination quality.

Every function takes whole arrays (one row per video or per clip) and returns plain Python
floats or numpy arrays, so it can be checked against a plain loop. Streaming accumulation over
an eval set lives in `halluc_jax.evaluation.evaluate`; this module only does the arithmetic.
"""
import numpy as np


def topk_correct(scores, labels, k):
  """Per-row hit: is (one of) the true class(es) among the k highest scores?

  Args:
    scores: float [N, C] class scores (probabilities or logits).
    labels: int [N] class ids, or a multi-hot [N, C] (a hit is any positive in the top k).
    k: how many top classes count; clipped to C.

  Returns:
    bool [N].
  """
  scores = np.asarray(scores)
  k = min(int(k), scores.shape[1])
  # argpartition is O(C) per row; the order inside the top k does not matter for a hit.
  topk = np.argpartition(-scores, k - 1, axis=1)[:, :k]
  labels = np.asarray(labels)
  if labels.ndim == 1:
    return np.any(topk == labels[:, None], axis=1)
  return np.take_along_axis(labels, topk, axis=1).max(axis=1) > 0


def topk_accuracy(scores, labels, k):
  """Fraction of rows whose true class is among the top k scores (0.0 for no rows)."""
  hits = topk_correct(scores, labels, k)
  return float(hits.mean()) if hits.size else 0.0


def confusion_matrix(labels, predictions, num_classes):
  """int64 [C, C] counts; row = true class, column = predicted class."""
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
  return cm


def per_class_accuracy(cm):
  """Recall per class from a confusion matrix; NaN for a class with no examples."""
  cm = np.asarray(cm, np.float64)
  support = cm.sum(axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def mean_class_accuracy(cm):
  """Mean over the classes that occur (Toyota-Smarthome style); 0.0 if none occur."""
  acc = per_class_accuracy(cm)
  present = ~np.isnan(acc)
  return float(acc[present].mean()) if present.any() else 0.0


def average_precision(scores, targets):
  """Non-interpolated average precision of one class (sklearn's definition).

  AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds in decreasing order, so
  tied scores enter the ranking together rather than in an arbitrary order.

  Args:
    scores: float [N], higher = more confident.
    targets: [N], nonzero = positive.

  Returns:
    AP in [0, 1], or NaN when there is no positive (AP is undefined).
  """
  scores = np.asarray(scores, np.float64)
  targets = np.asarray(targets) > 0
  num_pos = int(targets.sum())
  if num_pos == 0:
    return float('nan')
  order = np.argsort(-scores, kind='stable')
  scores, targets = scores[order], targets[order]
  tp = np.cumsum(targets)
  # The last index of each run of equal scores is where that threshold's counts are read.
  last_of_run = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
  tp = tp[last_of_run].astype(np.float64)
  precision = tp / (last_of_run + 1)
  recall = tp / num_pos
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(scores, targets):
  """Mean of per-class AP over the classes with at least one positive (Charades-style).

  Args:
    scores: float [N, C].
    targets: multi-hot [N, C].

  Returns:
    (mAP, per-class AP float [C] with NaN for classes without positives); mAP is 0.0 if no
    class has a positive.
  """
  scores, targets = np.asarray(scores), np.asarray(targets)
  ap = np.array([average_precision(scores[:, c], targets[:, c])
                 for c in range(scores.shape[1])])
  present = ~np.isnan(ap)
  return (float(ap[present].mean()) if present.any() else 0.0), ap


def cosine_similarity(pred, target, eps=1e-8):
  """Row-wise cosine similarity of two float [N, D] arrays -> float [N]."""
  pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
  num = np.sum(pred * target, axis=1)
  den = np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1)
  return num / np.maximum(den, eps)


def r2_score(pred, target):
  """Coefficient of determination pooled over all dimensions (variance-weighted R^2).

  R^2 = 1 - sum_{n,d} (y - yhat)^2 / sum_{n,d} (y - mean_n y)^2. 1 is perfect; 0 is what
  predicting each dimension's mean scores; it is unbounded below.

  Args:
    pred: float [N, D].
    target: float [N, D].

  Returns:
    R^2, or NaN when the targets have zero variance (fewer than two distinct rows).
  """
  pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
  ss_res = np.sum((target - pred) ** 2)
  ss_tot = np.sum((target - target.mean(axis=0)) ** 2)
  return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float('nan')


class R2Accumulator:
  """Streaming pooled R^2 from sufficient statistics (float64; no rows kept in memory)."""

  def __init__(self, dim):
    self.count = 0
    self.ss_res = 0.0
    self.sum_y = np.zeros((dim,), np.float64)
    self.sum_y2 = np.zeros((dim,), np.float64)

  def update(self, pred, target):
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    self.count += target.shape[0]
    self.ss_res += float(np.sum((target - pred) ** 2))
    self.sum_y += target.sum(axis=0)
    self.sum_y2 += np.sum(target ** 2, axis=0)

  def result(self):
    if self.count == 0:
      return float('nan')
    ss_tot = float(np.sum(self.sum_y2 - self.sum_y ** 2 / self.count))
    # Relative tolerance: the one-pass variance can come out as a tiny positive for constant y.
    if ss_tot <= 1e-12 * max(float(np.sum(self.sum_y2)), 1e-30):
      return float('nan')
    return 1.0 - self.ss_res / ss_tot
