"""halluc_jax.evaluation.metrics against plain Python loops written from the definitions."""
import numpy as np
import pytest

from halluc_jax.evaluation import metrics


def _loop_topk(scores, labels, k):
  hits = 0
  for row, y in zip(scores, labels):
    ranked = sorted(range(len(row)), key=lambda c: -row[c])[:k]
    hits += (y in ranked) if np.ndim(y) == 0 else any(y[c] > 0 for c in ranked)
  return hits / len(scores)


def _loop_ap(scores, targets):
  """AP as the area under the step precision-recall curve, threshold by threshold."""
  num_pos = sum(1 for t in targets if t)
  ap, prev_recall = 0.0, 0.0
  for thr in sorted(set(scores), reverse=True):
    chosen = [t for s, t in zip(scores, targets) if s >= thr]
    tp = sum(1 for t in chosen if t)
    recall = tp / num_pos
    ap += (recall - prev_recall) * tp / len(chosen)
    prev_recall = recall
  return ap


def test_topk_single_and_multi_label():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(50, 7))
  labels = rng.integers(0, 7, size=50)
  for k in (1, 3, 5, 9):
    assert metrics.topk_accuracy(scores, labels, k) == pytest.approx(
        _loop_topk(scores, labels, min(k, 7)))
  multi_hot = (rng.random((50, 7)) < 0.2).astype(np.float32)
  for k in (1, 5):
    assert metrics.topk_accuracy(scores, multi_hot, k) == pytest.approx(
        _loop_topk(scores, multi_hot, k))
  assert metrics.topk_accuracy(scores, labels, 7) == 1.0
  assert metrics.topk_accuracy(np.zeros((0, 3)), np.zeros((0,), int), 1) == 0.0


def test_confusion_and_mean_class_accuracy():
  labels = np.array([0, 0, 0, 1, 1, 3])
  preds = np.array([0, 1, 0, 1, 1, 0])
  cm = metrics.confusion_matrix(labels, preds, 4)
  expected = np.zeros((4, 4), int)
  for y, p in zip(labels, preds):
    expected[y, p] += 1
  np.testing.assert_array_equal(cm, expected)
  acc = metrics.per_class_accuracy(cm)
  np.testing.assert_allclose(acc[[0, 1, 3]], [2 / 3, 1.0, 0.0])
  assert np.isnan(acc[2])  # class 2 never occurs: excluded, not counted as 0
  assert metrics.mean_class_accuracy(cm) == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_average_precision_matches_loop_with_ties():
  rng = np.random.default_rng(1)
  for trial in range(20):
    n = int(rng.integers(2, 40))
    # Rounded scores force ties, which is where ranking-based AP implementations disagree.
    scores = np.round(rng.random(n), 1 if trial % 2 else 3)
    targets = rng.random(n) < 0.3
    if not targets.any():
      targets[0] = True
    assert metrics.average_precision(scores, targets) == pytest.approx(
        _loop_ap(list(scores), list(targets)))
  assert metrics.average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)
  assert metrics.average_precision([0.1, 0.8, 0.9], [1, 0, 0]) == pytest.approx(1 / 3)
  assert np.isnan(metrics.average_precision([0.1, 0.2], [0, 0]))


def test_mean_average_precision_skips_classes_without_positives():
  rng = np.random.default_rng(2)
  scores = rng.random((30, 5))
  targets = (rng.random((30, 5)) < 0.3).astype(np.float32)
  targets[:, 4] = 0
  m, ap = metrics.mean_average_precision(scores, targets)
  expected = [_loop_ap(list(scores[:, c]), list(targets[:, c] > 0)) for c in range(4)]
  np.testing.assert_allclose(ap[:4], expected)
  assert np.isnan(ap[4]) and m == pytest.approx(np.mean(expected))


def test_cosine_and_r2_against_loops():
  rng = np.random.default_rng(3)
  y = rng.normal(size=(40, 6))
  yhat = y + 0.3 * rng.normal(size=(40, 6))
  cos = metrics.cosine_similarity(yhat, y)
  for i in range(40):
    a, b = yhat[i], y[i]
    assert cos[i] == pytest.approx(sum(a * b) / np.sqrt(sum(a * a) * sum(b * b)))
  ss_res = sum((y[i, d] - yhat[i, d]) ** 2 for i in range(40) for d in range(6))
  means = [sum(y[:, d]) / 40 for d in range(6)]
  ss_tot = sum((y[i, d] - means[d]) ** 2 for i in range(40) for d in range(6))
  assert metrics.r2_score(yhat, y) == pytest.approx(1 - ss_res / ss_tot)
  assert metrics.r2_score(y, y) == pytest.approx(1.0)
  assert metrics.r2_score(np.tile(y.mean(0), (40, 1)), y) == pytest.approx(0.0, abs=1e-12)
  assert np.isnan(metrics.r2_score(yhat, np.ones_like(y)))

  acc = metrics.R2Accumulator(6)
  for chunk in np.array_split(np.arange(40), 7):
    acc.update(yhat[chunk], y[chunk])
  assert acc.result() == pytest.approx(metrics.r2_score(yhat, y))
  assert np.isnan(metrics.R2Accumulator(3).result())
