"""Clip-consistent RandAugment (Cubuk et al. 2020) on uint8 clips [T, H, W, 3].

timm's `rand-m<M>-n<N>-mstd<S>-inc1` policy, which VideoMAE fine-tunes with (m7, n4, mstd0.5):
N ops drawn uniformly with replacement from OPS, each applied with probability 0.5 at magnitude
M + N(0, S) clipped to [0, 10] (MAX_LEVEL), using the 'increasing' forms (a larger magnitude is
always a stronger change). Every op uses the same parameters on every frame, and the two
histogram ops (auto-contrast, equalize) read the histogram of the whole clip, so the motion in
a clip is left as it was (docs/method.md, 'Fine-tuning recipe').

The clip feeds both passes of the alternating scheme; its descriptors were extracted from the
un-augmented video, as for the random-resized crop and the flip.
"""
import cv2
import numpy as np

MAX_LEVEL = 10.0
_FILL = (128, 128, 128)


def _blend(clip, other, factor):
  """PIL's ImageEnhance: other + factor * (clip - other), clipped to uint8."""
  out = other.astype(np.float32) + factor * (clip.astype(np.float32) - other.astype(np.float32))
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _gray(clip):
  return (clip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def _affine(clip, matrix):
  _, h, w, _ = clip.shape
  return np.stack([cv2.warpAffine(f, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=_FILL)
                   for f in clip])


def _signed(level, rng):
  return level if rng.uniform() < 0.5 else -level


def auto_contrast(clip, level, rng):
  del level, rng
  lo = clip.min(axis=(0, 1, 2)).astype(np.float32)
  hi = clip.max(axis=(0, 1, 2)).astype(np.float32)
  scale = np.where(hi > lo, 255.0 / np.maximum(hi - lo, 1), 1.0)
  out = np.where(hi > lo, (clip - lo) * scale, clip)
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def equalize(clip, level, rng):
  del level, rng
  out = np.empty_like(clip)
  for ch in range(clip.shape[-1]):
    hist = np.bincount(clip[..., ch].ravel(), minlength=256)
    cdf = np.cumsum(hist)
    nonzero = cdf[hist > 0]
    if len(nonzero) < 2:
      out[..., ch] = clip[..., ch]
      continue
    lut = np.clip(np.round((cdf - nonzero[0]) / max(cdf[-1] - nonzero[0], 1) * 255), 0, 255)
    out[..., ch] = lut.astype(np.uint8)[clip[..., ch]]
  return out


def invert(clip, level, rng):
  del level, rng
  return 255 - clip


def rotate(clip, level, rng):
  _, h, w, _ = clip.shape
  angle = _signed(level / MAX_LEVEL * 30.0, rng)
  return _affine(clip, cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0))


def posterize(clip, level, rng):
  del rng
  bits = max(1, 8 - int(level / MAX_LEVEL * 4))  # increasing: fewer bits kept
  mask = np.uint8((0xFF << (8 - bits)) & 0xFF)
  return clip & mask


def solarize(clip, level, rng):
  del rng
  threshold = 256 - level / MAX_LEVEL * 256  # increasing: a lower threshold
  return np.where(clip >= threshold, 255 - clip, clip).astype(np.uint8)


def solarize_add(clip, level, rng):
  del rng
  added = clip.astype(np.int32) + int(level / MAX_LEVEL * 110)
  return np.where(clip < 128, np.clip(added, 0, 255), clip).astype(np.uint8)


def color(clip, level, rng):
  return _blend(clip, np.repeat(_gray(clip), 3, -1), 1.0 + _signed(level / MAX_LEVEL * 0.9, rng))


def contrast(clip, level, rng):
  mean = np.full_like(clip, int(round(float(_gray(clip).mean()))))
  return _blend(clip, mean, 1.0 + _signed(level / MAX_LEVEL * 0.9, rng))


def brightness(clip, level, rng):
  return _blend(clip, np.zeros_like(clip), 1.0 + _signed(level / MAX_LEVEL * 0.9, rng))


def sharpness(clip, level, rng):
  kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0  # PIL's SMOOTH
  smooth = np.stack([cv2.filter2D(f, -1, kernel, borderType=cv2.BORDER_REPLICATE) for f in clip])
  return _blend(clip, smooth, 1.0 + _signed(level / MAX_LEVEL * 0.9, rng))


def shear_x(clip, level, rng):
  s = _signed(level / MAX_LEVEL * 0.3, rng)
  return _affine(clip, np.array([[1, s, 0], [0, 1, 0]], np.float32))


def shear_y(clip, level, rng):
  s = _signed(level / MAX_LEVEL * 0.3, rng)
  return _affine(clip, np.array([[1, 0, 0], [s, 1, 0]], np.float32))


def translate_x(clip, level, rng):
  dx = _signed(level / MAX_LEVEL * 0.45, rng) * clip.shape[2]
  return _affine(clip, np.array([[1, 0, dx], [0, 1, 0]], np.float32))


def translate_y(clip, level, rng):
  dy = _signed(level / MAX_LEVEL * 0.45, rng) * clip.shape[1]
  return _affine(clip, np.array([[1, 0, 0], [0, 1, dy]], np.float32))


OPS = {'auto_contrast': auto_contrast, 'equalize': equalize, 'invert': invert, 'rotate': rotate,
       'posterize': posterize, 'solarize': solarize, 'solarize_add': solarize_add,
       'color': color, 'contrast': contrast, 'brightness': brightness, 'sharpness': sharpness,
       'shear_x': shear_x, 'shear_y': shear_y, 'translate_x': translate_x,
       'translate_y': translate_y}


def rand_augment(clip, rng, num_ops, magnitude, magnitude_std=0.5, prob=0.5, ops=None):
  """`clip` (uint8 [T, H, W, 3]) after `num_ops` random ops, the same on every frame.

  Args:
    clip: uint8 frames.
    rng: `np.random.Generator` (the element's, so the pipeline stays exactly resumable).
    num_ops: N, ops drawn with replacement.
    magnitude: M in [0, MAX_LEVEL].
    magnitude_std: S; each op's level is clip(M + N(0, S), 0, MAX_LEVEL) (0 = always M).
    prob: probability that a drawn op is applied.
    ops: names to draw from (default: all of OPS).
  """
  if clip.dtype != np.uint8:
    raise ValueError(f'rand_augment expects uint8 frames, got {clip.dtype}.')
  names = sorted(OPS) if ops is None else list(ops)
  for _ in range(int(num_ops)):
    name = names[int(rng.integers(len(names)))]
    if rng.uniform() >= prob:
      continue
    level = magnitude if magnitude_std <= 0 else rng.normal(magnitude, magnitude_std)
    clip = OPS[name](clip, float(np.clip(level, 0.0, MAX_LEVEL)), rng)
  return np.ascontiguousarray(clip)
