"""ODF (docs/method.md §4): per-box vectors against plain loops, dimensions, weighting, errors."""
import math

import numpy as np
import pytest

from halluc_jax.descriptors import odf


def random_detections(num_boxes, num_frames, label_space, class_score_dim, seed=0):
  rng = np.random.default_rng(seed)
  corners = np.sort(rng.random((num_boxes, 2, 2)), axis=1)  # (min, max) per axis
  boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], 1)
  class_scores = rng.random((num_boxes, class_score_dim)) if class_score_dim else None
  return odf.Detections(frame_index=np.sort(rng.integers(0, num_frames, num_boxes)), boxes=boxes,
                        scores=rng.random(num_boxes),
                        class_ids=rng.integers(0, label_space, num_boxes),
                        class_scores=class_scores)


def plain_box_vector(dets, i, num_frames, label_space, use_rbf):
  def embed(x):
    if not use_rbf:
      return [x]
    return [math.exp(-(x - z / 6) ** 2 / 0.25) for z in range(7)]
  vec = [0.0] * label_space
  vec[int(dets.class_ids[i])] = 1.0
  if dets.class_scores is not None:
    total = sum(abs(s) for s in dets.class_scores[i])
    vec += [s / total for s in dets.class_scores[i]]
  vec += embed(dets.scores[i])
  for corner in dets.boxes[i]:  # ymin, xmin, ymax, xmax
    vec += embed(corner)
  vec += embed(dets.frame_index[i] / (num_frames - 1))
  return np.array(vec)


@pytest.mark.parametrize('use_rbf', [True, False])
@pytest.mark.parametrize('class_score_dim', [0, 6])
def test_box_vectors_match_plain(use_rbf, class_score_dim):
  dets = random_detections(9, 12, 10, class_score_dim)
  got = odf.odf_box_vectors(dets, 12, 10, class_score_dim, use_rbf)
  assert got.shape == (9, odf.odf_box_dim(10, class_score_dim, use_rbf))
  for i in range(9):
    np.testing.assert_allclose(got[i], plain_box_vector(dets, i, 12, 10, use_rbf), rtol=1e-12)


@pytest.mark.parametrize('use_rbf,box_dim', [(True, 1214), (False, 1178)])
def test_paper_dimensions(use_rbf, box_dim):
  assert odf.odf_box_dim(171, 1001, use_rbf) == box_dim
  assert odf.odf_dim(171, 1001, use_rbf, n_eig=3) == box_dim * 7
  dets = random_detections(25, 30, 171, 1001, seed=1)
  vec, present = odf.odf_descriptor(dets, 30, 171, 1001, use_rbf)
  assert present and vec.shape == (box_dim * 7,) and vec.dtype == np.float64
  assert np.all(np.isfinite(vec))


def test_without_class_scores():
  dets = random_detections(5, 4, 171, 0)
  assert odf.odf_box_vectors(dets, 4, 171).shape == (5, 171 + 42)
  vec, present = odf.odf_descriptor(dets, 4, 171)
  assert present and vec.shape == ((171 + 42) * 7,)


def test_descriptor_uses_per_frame_weights():
  dets = random_detections(14, 6, 8, 0, seed=3)
  vec, _ = odf.odf_descriptor(dets, 6, 8)
  cols = odf.odf_box_vectors(dets, 6, 8)
  d = cols.shape[1]
  frames = sorted(set(dets.frame_index.tolist()))
  centred = cols - cols.mean(axis=0)
  y = np.zeros((d, len(cols)))
  for n, f in enumerate(dets.frame_index):  # (1/J) (1/K_j) c_n, column by column
    y[:, n] = centred[n] / (len(frames) * int(np.sum(dets.frame_index == f)))
  eigval, eigvec = np.linalg.eigh(y @ y.T)
  top = eigvec[:, -1] * np.sign(eigvec[np.argmax(np.abs(eigvec[:, -1])), -1])
  np.testing.assert_allclose(vec[d:2 * d], top, atol=1e-9)
  lam2 = np.sort(np.clip(eigval, 0, None))[::-1][:len(cols)]
  np.testing.assert_allclose(vec[6 * d:6 * d + len(cols)], lam2 / lam2.sum(), atol=1e-9)


def test_shared_label_space_separates_detectors():
  coco = random_detections(1, 3, 171, 0)
  ava = odf.Detections(coco.frame_index, coco.boxes, coco.scores, coco.class_ids * 0 + 91 + 5)
  coco = odf.Detections(coco.frame_index, coco.boxes, coco.scores, coco.class_ids * 0 + 5)
  a, b = odf.odf_box_vectors(coco, 3, 171), odf.odf_box_vectors(ava, 3, 171)
  assert a[0, 5] == 1 and b[0, 96] == 1 and a[0, :171].sum() == b[0, :171].sum() == 1
  np.testing.assert_array_equal(a[0, 171:], b[0, 171:])


def test_no_detections_is_absent():
  for class_score_dim in (0, 1001):
    vec, present = odf.odf_descriptor(odf.Detections.empty(class_score_dim), 16, 171,
                                      class_score_dim)
    assert not present and vec.shape == (odf.odf_dim(171, class_score_dim),) and not vec.any()


def test_single_frame_video():
  dets = random_detections(3, 1, 5, 0)
  np.testing.assert_allclose(odf.odf_box_vectors(dets, 1, 5)[:, -7:],
                             np.tile(np.exp(-(np.arange(7) / 6) ** 2 / 0.25), (3, 1)))


def test_bad_detections_raise():
  good = random_detections(4, 5, 10, 3)
  cases = [
      (dict(class_ids=np.array([0, 1, 2, 10])), 'label space'),
      (dict(frame_index=np.array([0, 1, 2, 5])), 'frame_index'),
      (dict(boxes=good.boxes * 2 + 0.1), 'normalised'),
      (dict(boxes=good.boxes[:, :3]), r'\[N, 4\]'),
      (dict(scores=good.scores[:3]), 'scores has 3 rows'),
      (dict(class_scores=None), 'class_scores is None'),
      (dict(class_scores=good.class_scores[:, :2]), 'class_score_dim=3'),
      (dict(scores=np.array([0.1, np.nan, 0.2, 0.3])), 'non-finite'),
  ]
  for change, message in cases:
    fields = dict(good.__dict__, **change)
    with pytest.raises(ValueError, match=message):
      odf.odf_box_vectors(odf.Detections(**fields), 5, 10, class_score_dim=3)
