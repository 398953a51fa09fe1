"""Segmentation-based detectors: coloured-shape contours and MSER blobs (see detectors.py)."""
import cv2
import numpy as np

from halluc_jax.descriptors.sources import LABEL_INDEX, concat_detections
from halluc_jax.descriptors.sources.detectors import FrameDetector, _upscale

SEGMENTATIONS = ('edges', 'median', 'saturation')


def camera_shifts(frames):
  """Per-frame global translation (dx, dy) [T, 2] of each frame relative to the clip's first.

  Phase correlation of grey frames; handheld shake would otherwise turn every textured edge
  of the background into foreground.
  """
  gray = [np.float32(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)) for f in frames]
  window = cv2.createHanningWindow(gray[0].shape[::-1], cv2.CV_32F)
  shifts = np.array([cv2.phaseCorrelate(gray[0], g, window)[0] for g in gray], np.float64)
  return np.round(shifts)  # whole pixels: interpolation would blur the median background


def _translate(image, dx, dy):
  matrix = np.float32([[1, 0, dx], [0, 1, dy]])
  return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_REPLICATE)


def median_background_masks(frames, diff_threshold=40, stabilise=True):
  """Foreground masks by temporal-median background subtraction.

  Args:
    frames: uint8 [T, H, W, 3], T >= 3, frames of one clip with a static (or shaking) background.
    diff_threshold: largest per-channel |frame - background| that is still background.
    stabilise: undo global camera translation before taking the median.

  Returns:
    uint8 [T, H, W] masks in {0, 255}.
  """
  shifts = camera_shifts(frames) if stabilise else np.zeros((len(frames), 2))
  aligned = np.stack([_translate(f, -dx, -dy) for f, (dx, dy) in zip(frames, shifts)])
  background = np.median(aligned, axis=0).astype(np.float32)
  masks = []
  for frame, (dx, dy) in zip(frames, shifts):
    diff = np.abs(frame.astype(np.float32) - _translate(background, dx, dy)).max(axis=-1)
    masks.append(np.where(diff > diff_threshold, 255, 0).astype(np.uint8))
  return np.stack(masks)


def saturation_masks(frames, chroma_threshold=0.35):
  """Foreground masks of strongly coloured pixels (saturation x value above a threshold)."""
  out = []
  for frame in frames:
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL).astype(np.float32) / 255.0
    out.append(np.where(hsv[..., 1] * hsv[..., 2] > chroma_threshold, 255, 0).astype(np.uint8))
  return np.stack(out)


def edge_masks(frames, grad_threshold=12.0, blur_sigma=0.7):
  """Foreground masks of regions closed by sharp colour edges (flat objects on soft clutter).

  Edges are pixels whose largest per-channel gradient (Sobel on a lightly blurred frame, in
  grey levels per pixel) exceeds `grad_threshold`; a mask is the edges plus every region they
  enclose (the complement of the background reachable from the border).

  Args:
    frames: uint8 [T, H, W, 3].
    grad_threshold: edge threshold, grey levels per pixel.
    blur_sigma: Gaussian blur before the gradients, pixels (noise suppression).

  Returns:
    uint8 [T, H, W] masks in {0, 255}.
  """
  out = []
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
  for frame in frames:
    img = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), blur_sigma)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy).max(axis=-1) / 8.0  # Sobel gain is 8 on a unit ramp
    edges = np.where(magnitude > grad_threshold, 255, 0).astype(np.uint8)
    edges = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, kernel)
    padded = np.pad(edges, 1)  # a 0 ring so one flood from a corner reaches all border background
    cv2.floodFill(padded, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8),
                  (0, 0), 128)
    out.append(np.where(padded[1:-1, 1:-1] != 128, 255, 0).astype(np.uint8))
  return np.stack(out)


def fill_ratios(contour):
  """How well the region fills its smallest enclosing triangle, rotated rectangle and circle.

  Returns:
    dict triangle/quadrilateral/circle -> contour area / enclosing area, in [0, 1] (about 1 for
    the matching shape: a square fills 64% of its circle and half a triangle, a disc 79% of its
    square, a triangle half its rectangle); and 'solidity' = area / convex-hull area.
  """
  area = cv2.contourArea(contour)
  hull = cv2.convexHull(contour)
  hull_area = cv2.contourArea(hull)
  if area <= 0 or hull_area <= 0:
    return {'triangle': 0.0, 'quadrilateral': 0.0, 'circle': 0.0, 'solidity': 0.0}
  tri_area, _ = cv2.minEnclosingTriangle(hull.astype(np.float32))
  (_, _), (w, h), _ = cv2.minAreaRect(contour)
  (_, _), radius = cv2.minEnclosingCircle(contour)
  return {'triangle': area / max(tri_area, 1e-9), 'quadrilateral': area / max(w * h, 1e-9),
          'circle': area / max(np.pi * radius ** 2, 1e-9), 'solidity': area / hull_area}


def classify_contour(contour, star_solidity=0.88, min_fill=0.75):
  """Shape class and solidity of one external contour.

  Concave regions (solidity below `star_solidity`) are stars when their hull is filled 40% or
  more (a five-point star with inner radius 0.45 fills ~60%), else 'other_shape'. A convex
  region takes the enclosing shape it fills best, if it fills at least `min_fill` of it: a
  triangle its enclosing triangle, a rectangle its rotated bounding box, a disc its enclosing
  circle. Fill ratios are robust to the anti-aliased, noisy and partly merged outlines of real
  frames, where polygon approximation miscounts vertices. Other convex shapes (hexagons,
  rhombi, blends) are 'polygon'.

  Returns:
    (label name in LABEL_SPACE, solidity = area / convex-hull area).
  """
  ratios = fill_ratios(contour)
  solidity = ratios.pop('solidity')
  if solidity < star_solidity:
    return ('star' if solidity > 0.4 else 'other_shape'), solidity
  label, fill = max(ratios.items(), key=lambda kv: kv[1])
  return (label if fill >= min_fill else 'polygon'), solidity


class ShapeDetector(FrameDetector):
  """Coloured-shape detector: segmentation -> contours -> polygon class.

  Segmentations, at a working resolution whose short side is >= min_side: 'edges' (default)
  fills the regions closed by sharp colour edges, i.e. flat objects over soft clutter, moving or
  not; 'median' subtracts the clip's temporal-median frame (optionally after undoing camera
  translation), so it finds what moves, and needs the whole clip (>= 3 frames); 'saturation'
  keeps strongly coloured pixels.
  Score = sqrt(solidity) * (1 - exp(-area / (4 * min_area))): compact, not-tiny regions score
  high, ragged merges and specks low.
  """
  name = 'shape'

  def __init__(self, segmentation='edges', min_side=128, grad_threshold=12.0, diff_threshold=40,
               stabilise=False, chroma_threshold=0.35, min_area_frac=0.002, max_area_frac=0.5,
               min_fill=0.75, **kwargs):
    super().__init__(**kwargs)
    if segmentation not in SEGMENTATIONS:
      raise ValueError(f'ShapeDetector segmentation {segmentation!r} is not one of '
                       f'{SEGMENTATIONS}.')
    self.grad_threshold = float(grad_threshold)
    self.segmentation, self.min_side = segmentation, int(min_side)
    self.diff_threshold, self.chroma_threshold = float(diff_threshold), float(chroma_threshold)
    self.min_area_frac, self.max_area_frac = float(min_area_frac), float(max_area_frac)
    self.min_fill, self.stabilise = float(min_fill), bool(stabilise)

  def params(self):
    return dict(super().params(), segmentation=self.segmentation, min_side=self.min_side,
                grad_threshold=self.grad_threshold,
                diff_threshold=self.diff_threshold, chroma_threshold=self.chroma_threshold,
                min_area_frac=self.min_area_frac, max_area_frac=self.max_area_frac,
                min_fill=self.min_fill, stabilise=self.stabilise)

  def masks(self, frames):
    """Foreground masks uint8 [T, H', W'] at the working resolution, and the upscale factor."""
    scale = max(1.0, self.min_side / min(frames.shape[1:3]))
    if scale > 1.0:
      frames = np.stack([_upscale(f, self.min_side)[0] for f in frames])
    if self.segmentation == 'edges':
      return edge_masks(frames, self.grad_threshold), scale
    if self.segmentation == 'median':
      if len(frames) < 3:
        raise ValueError(f'median segmentation needs >= 3 frames, got {len(frames)}.')
      return median_background_masks(frames, self.diff_threshold, self.stabilise), scale
    return saturation_masks(frames, self.chroma_threshold), scale

  def detect_mask(self, mask, scale=1.0):
    """(boxes_px (x0, y0, x1, y1) [k, 4], scores [k], class_ids [k]) of one foreground mask.

    Args:
      mask: uint8 [H', W'] in {0, 255} at the working resolution.
      scale: working / frame resolution; boxes come back in frame pixels.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE,
                            kernel)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    min_area = self.min_area_frac * mask.size
    boxes, scores, ids = [], [], []
    for contour in contours:
      area = cv2.contourArea(contour)
      if area < min_area or area > self.max_area_frac * mask.size:
        continue
      label, solidity = classify_contour(contour, min_fill=self.min_fill)
      x, y, w, h = cv2.boundingRect(contour)
      boxes.append(np.array([x, y, x + w, y + h], np.float64) / scale)
      scores.append(np.sqrt(solidity) * (1.0 - np.exp(-area / (4.0 * min_area))))
      ids.append(LABEL_INDEX[label])
    return np.reshape(boxes, (-1, 4)), np.asarray(scores), np.asarray(ids, np.int64)

  def __call__(self, frames, frame_indices):
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
      raise ValueError(f'shape: expected uint8 frames [T, H, W, 3], got {frames.dtype} '
                       f'{frames.shape}.')
    masks, scale = self.masks(frames)
    parts = [self._finish_frame(frame, int(t), *self.detect_mask(mask, scale))
             for frame, t, mask in zip(frames, frame_indices, masks)]
    return concat_detections(parts, self.class_score_dim)


class MserBlobDetector(FrameDetector):
  """MSER regions as 'blob' boxes; score = pixels of the region / area of its box; NMS at 0.5."""
  name = 'mser'

  def __init__(self, delta=5, min_area_frac=0.002, max_area_frac=0.25, nms_iou=0.5, **kwargs):
    super().__init__(**kwargs)
    self.delta, self.nms_iou = int(delta), float(nms_iou)
    self.min_area_frac, self.max_area_frac = float(min_area_frac), float(max_area_frac)

  def params(self):
    return dict(super().params(), delta=self.delta, min_area_frac=self.min_area_frac,
                max_area_frac=self.max_area_frac, nms_iou=self.nms_iou)

  def detect_frame(self, frame_rgb):
    gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    size = gray.size
    mser = cv2.MSER_create(delta=self.delta, min_area=max(5, int(self.min_area_frac * size)),
                           max_area=max(10, int(self.max_area_frac * size)))
    regions, rects = mser.detectRegions(gray)
    rects = np.asarray(rects, np.float64).reshape(-1, 4)
    scores = np.array([len(r) / max(w * h, 1.0) for r, (_, _, w, h) in zip(regions, rects)])
    if len(rects):
      keep = np.asarray(cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), 0.0, self.nms_iou),
                        np.int64).reshape(-1)
      rects, scores = rects[keep], scores[keep]
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
    return boxes, scores, np.full(len(boxes), LABEL_INDEX['blob'])
