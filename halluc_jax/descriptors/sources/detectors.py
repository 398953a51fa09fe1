"""Built-in OpenCV detectors; each is one ODF detector stream (as each Faster R-CNN in the paper).

* `HogPeopleDetector`: Dalal-Triggs HOG + linear SVM (`cv2.HOGDescriptor_getDefaultPeopleDetector`).
* `HaarDetector`: Viola-Jones cascades (frontal face, upper body, full body) as three classes of
  one detector. OpenCV 5 wheels no longer ship the XML files, so the three cascades are vendored,
  gzipped and unmodified (licence headers inside), in `haarcascades/`; a `cv2.data.haarcascades`
  that does hold them (OpenCV 4) is preferred.
* `ShapeDetector`: foreground segmentation (temporal-median background subtraction, or colour
  saturation) -> external contours -> polygon approximation -> circle / triangle / quadrilateral /
  polygon / other_shape; score = contour solidity damped for tiny areas. Suited to the embedded
  dataset, whose actors are coloured geometric shapes moving over a static textured background.
* `MserBlobDetector`: MSER regions as class-agnostic 'blob' boxes; score = region fill ratio.

All detectors take RGB uint8 frames [T, H, W, 3] plus their frame indices and return one video's
`Detections` with boxes normalised to [0, 1] in (ymin, xmin, ymax, xmax) order, scores in [0, 1],
ids in the shared `LABEL_SPACE`, at most `max_boxes` boxes with score >= `score_threshold` per
frame (docs/method.md §9.16), and, optionally, per-box crop scores: a saturation-weighted hue histogram
of the box crop (12 hue bins + dark + grey), l1-normalised, standing in for the paper's ImageNet
classifier run on each crop (y_inet).
"""
import os

import cv2
import numpy as np

from halluc_jax.descriptors.sources import LABEL_INDEX, Detections, concat_detections

VENDORED_HAAR_DIR = os.path.join(os.path.dirname(__file__), 'haarcascades')
HAAR_CASCADES = {'face': 'haarcascade_frontalface_alt2.xml',
                 'upper_body': 'haarcascade_upperbody.xml',
                 'full_body': 'haarcascade_fullbody.xml'}
NUM_HUE_BINS = 12
CROP_SCORE_DIM = NUM_HUE_BINS + 2


def crop_colour_scores(frame_rgb, boxes_px, num_hue_bins=NUM_HUE_BINS):
  """Per-box l1-normalised colour histograms: hue bins weighted by saturation, + dark + grey.

  Args:
    frame_rgb: uint8 [H, W, 3].
    boxes_px: [k, 4] integer pixel boxes (x0, y0, x1, y1), x1/y1 exclusive.
    num_hue_bins: number of hue bins.

  Returns:
    float32 [k, num_hue_bins + 2], rows summing to 1.
  """
  hsv = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2HSV_FULL).astype(np.float32) / 255.0
  out = np.zeros((len(boxes_px), num_hue_bins + 2), np.float32)
  for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes_px, np.int64)):
    crop = hsv[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)].reshape(-1, 3)
    hue, sat, val = crop[:, 0], crop[:, 1], crop[:, 2]
    bins = np.minimum((hue * num_hue_bins).astype(np.int64), num_hue_bins - 1)
    chroma = sat * val  # weight of a pixel's hue: grey and dark pixels have no reliable hue
    out[i, :num_hue_bins] = np.bincount(bins, weights=chroma, minlength=num_hue_bins)
    out[i, num_hue_bins] = np.sum((1.0 - chroma) * (val < 0.25))
    out[i, num_hue_bins + 1] = np.sum((1.0 - chroma) * (val >= 0.25))
  return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def _upscale(image, min_side):
  """Resizes so the short side is >= min_side (sliding-window models need room); returns scale."""
  scale = max(1.0, min_side / min(image.shape[:2]))
  if scale == 1.0:
    return image, 1.0
  size = (int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale)))
  return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), scale


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


class FrameDetector:
  """Base class: per-frame detection, then filtering, normalisation and crop scores.

  Subclasses implement `detect_frame(frame_rgb) -> (boxes_px float [k, 4] as (x0, y0, x1, y1),
  scores [k], class_ids [k])`, or override `__call__` when they need the whole clip.
  """
  name = 'detector'

  def __init__(self, score_threshold=0.3, max_boxes=20, crop_scores=True):
    self.score_threshold = float(score_threshold)
    self.max_boxes = int(max_boxes)
    self.crop_scores = bool(crop_scores)

  @property
  def class_score_dim(self):
    return CROP_SCORE_DIM if self.crop_scores else 0

  def params(self):
    """JSON-able description of the detector, for the target manifest."""
    return {'score_threshold': self.score_threshold, 'max_boxes': self.max_boxes,
            'crop_scores': 'hue_histogram' if self.crop_scores else 'none'}

  def _finish_frame(self, frame_rgb, index, boxes_px, scores, class_ids):
    """Filters by score, keeps the top max_boxes, normalises boxes, adds crop scores."""
    boxes_px = np.asarray(boxes_px, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    class_ids = np.asarray(class_ids, np.int64).reshape(-1)
    keep = np.flatnonzero(scores >= self.score_threshold)
    keep = keep[np.argsort(-scores[keep], kind='stable')][:self.max_boxes]
    height, width = frame_rgb.shape[:2]
    boxes_px = boxes_px[keep]
    boxes_px[:, [0, 2]] = np.clip(boxes_px[:, [0, 2]], 0, width)
    boxes_px[:, [1, 3]] = np.clip(boxes_px[:, [1, 3]], 0, height)
    norm = boxes_px[:, [1, 0, 3, 2]] / np.array([height, width, height, width], np.float64)
    class_scores = None
    if self.crop_scores:
      class_scores = crop_colour_scores(frame_rgb, np.round(boxes_px).astype(np.int64))
    return Detections(np.full((len(keep),), index, np.int64), norm.astype(np.float32),
                      scores[keep].astype(np.float32), class_ids[keep].astype(np.int64),
                      class_scores)

  def __call__(self, frames, frame_indices):
    """Detections of a clip: frames uint8 [T, H, W, 3] (RGB) at video frame_indices [T]."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
      raise ValueError(f'{self.name}: expected uint8 frames [T, H, W, 3], got '
                       f'{frames.dtype} {frames.shape}.')
    parts = [self._finish_frame(frame, int(t), *self.detect_frame(frame))
             for frame, t in zip(frames, frame_indices)]
    return concat_detections(parts, self.class_score_dim)


class HogPeopleDetector(FrameDetector):
  """HOG + linear SVM people detector; score = sigmoid(SVM margin)."""
  name = 'hog'

  def __init__(self, min_side=192, hit_threshold=0.0, win_stride=8, scale=1.1, **kwargs):
    super().__init__(**kwargs)
    self.min_side, self.hit_threshold = int(min_side), float(hit_threshold)
    self.win_stride, self.scale = int(win_stride), float(scale)
    self._hog = cv2.HOGDescriptor()
    self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

  def params(self):
    return dict(super().params(), model='HOGDescriptor_getDefaultPeopleDetector',
                min_side=self.min_side, hit_threshold=self.hit_threshold,
                win_stride=self.win_stride, scale=self.scale)

  def detect_frame(self, frame_rgb):
    image, scale = _upscale(frame_rgb, self.min_side)
    stride = (self.win_stride, self.win_stride)
    rects, weights = self._hog.detectMultiScale(image, hitThreshold=self.hit_threshold,
                                                winStride=stride, padding=stride, scale=self.scale)
    rects = np.asarray(rects, np.float64).reshape(-1, 4) / scale
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
    return boxes, _sigmoid(np.asarray(weights).reshape(-1)), np.full(len(boxes),
                                                                      LABEL_INDEX['person'])


def find_haar_cascade(filename, search_dir=''):
  """Path of a Haar cascade: search_dir, then cv2.data.haarcascades, then the vendored copy."""
  candidates = [os.path.join(d, filename + ext)
                for d in (search_dir, getattr(cv2.data, 'haarcascades', ''), VENDORED_HAAR_DIR)
                if d for ext in ('', '.gz')]
  for path in candidates:
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f'Haar cascade {filename!r} not found; looked at {candidates}.')


def _load_cascade(path):
  cascade = cv2.CascadeClassifier()
  if not cascade.load(path) or cascade.empty():  # FileStorage reads .xml.gz directly
    raise ValueError(f'Could not load the Haar cascade {path!r}.')
  return cascade


class HaarDetector(FrameDetector):
  """Viola-Jones cascades, one class each; score = sigmoid(last-stage weight)."""
  name = 'haar'

  def __init__(self, classes=('face', 'upper_body', 'full_body'), min_side=144,
               scale_factor=1.2, min_neighbors=3, cascade_dir='', **kwargs):
    super().__init__(**kwargs)
    unknown = [c for c in classes if c not in HAAR_CASCADES]
    if unknown:
      raise ValueError(f'Unknown Haar classes {unknown}; known: {sorted(HAAR_CASCADES)}.')
    self.classes, self.min_side = tuple(classes), int(min_side)
    self.scale_factor, self.min_neighbors = float(scale_factor), int(min_neighbors)
    self.paths = {c: find_haar_cascade(HAAR_CASCADES[c], cascade_dir) for c in self.classes}
    self._cascades = {c: _load_cascade(p) for c, p in self.paths.items()}

  def params(self):
    return dict(super().params(), cascades={c: os.path.basename(p) for c, p in self.paths.items()},
                min_side=self.min_side, scale_factor=self.scale_factor,
                min_neighbors=self.min_neighbors)

  def detect_frame(self, frame_rgb):
    gray, scale = _upscale(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY), self.min_side)
    boxes, scores, ids = [], [], []
    for name, cascade in self._cascades.items():
      rects, _, weights = cascade.detectMultiScale3(
          gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
          outputRejectLevels=True)
      rects = np.asarray(rects, np.float64).reshape(-1, 4) / scale
      boxes.append(np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1))
      scores.append(_sigmoid(np.asarray(weights, np.float64).reshape(-1)))
      ids.append(np.full(len(rects), LABEL_INDEX[name]))
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(ids)


DETECTOR_KINDS = ('hog', 'haar', 'shape', 'mser')


def build_detector(kind, **params):
  """A detector by kind ('hog' | 'haar' | 'shape' | 'mser') with its keyword parameters."""
  from halluc_jax.descriptors.sources import shapes  # pylint: disable=g-import-not-at-top
  classes = {'hog': HogPeopleDetector, 'haar': HaarDetector, 'shape': shapes.ShapeDetector,
             'mser': shapes.MserBlobDetector}
  if kind not in classes:
    raise ValueError(f'Unknown detector kind {kind!r}; expected one of {DETECTOR_KINDS}.')
  return classes[kind](**params)
