"""Sources of the raw material behind the ODF/SDF targets: detectors, saliency models, imports.

Built-in sources are classical OpenCV models, so extraction runs anywhere without weights
(`detectors.py`, `saliency.py`); paper-scale outputs (Faster R-CNN boxes, MNL/ACLNet maps) are
imported from files (`external.py`).

Shared label space of the built-in detectors (the one-hot delta(y_det) of docs/method.md §4). Every
detector writes its class ids into this one space, so one ODF layout serves every detector
stream, as the paper's COCO+AVA space (171 slots) serves its four Faster R-CNNs:

  id  name            emitted by
  0   person          HOG people detector (Dalal-Triggs default SVM)
  1   face            Haar cascade (frontal face, alt2)
  2   upper_body      Haar cascade (Kruppa-Schiele upper body)
  3   full_body       Haar cascade (Kruppa-Schiele full body)
  4   circle          shape detector (contours -> polygon approximation)
  5   triangle        shape detector
  6   quadrilateral   shape detector (squares, rectangles, diamonds)
  7   polygon         shape detector (5-8 convex vertices: pentagons, hexagons)
  8   star            shape detector (many vertices, low solidity)
  9   other_shape     shape detector (anything else: merged or occluded objects)
  10  blob            MSER blob detector

External detections bring their own label space (e.g. COCO+AVA, 171); its size is a config key.
Frame indices in Detections are frame numbers of the video (0-based) and tau, the `num_frames`
given to `odf.odf_descriptor`, is the video's frame count, so box times are video times whatever
subset of frames a detector ran on.
"""
import numpy as np

from halluc_jax.descriptors.odf import Detections  # the struct odf.odf_descriptor reads

LABEL_SPACE = ('person', 'face', 'upper_body', 'full_body', 'circle', 'triangle',
               'quadrilateral', 'polygon', 'star', 'other_shape', 'blob')
LABEL_INDEX = {name: i for i, name in enumerate(LABEL_SPACE)}


def empty_detections(class_score_dim=0):
  """Detections with N = 0 (a video where the detector found nothing)."""
  return Detections.empty(class_score_dim or 0)


def concat_detections(parts, class_score_dim=0):
  """Concatenates per-frame Detections (in order) into one video's Detections."""
  parts = [p for p in parts if len(p)]
  if not parts:
    return empty_detections(class_score_dim)
  has_scores = all(p.class_scores is not None for p in parts)
  return Detections(
      np.concatenate([p.frame_index for p in parts]).astype(np.int64),
      np.concatenate([p.boxes for p in parts]).astype(np.float32),
      np.concatenate([p.scores for p in parts]).astype(np.float32),
      np.concatenate([p.class_ids for p in parts]).astype(np.int64),
      np.concatenate([p.class_scores for p in parts]).astype(np.float32) if has_scores else None)
