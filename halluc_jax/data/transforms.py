"""Clip-level spatial transforms on numpy arrays.

A clip is uint8 or float [T, H, W, C]. Every op applies the same geometry to every frame, so the
motion inside a clip is preserved. Random ops take a `np.random.Generator`, which keeps them
pure and lets the input pipeline derive one generator per element (exact resumption).
"""
import cv2
import numpy as np

_CV2_MAX_CHANNELS = 512  # cv2.resize handles at most this many channels in one call


def resize(clip, height, width):
  """Resizes every frame to (height, width); area filter when shrinking, bilinear otherwise."""
  t, h, w, c = clip.shape
  if (h, w) == (height, width):
    return clip
  shrink = height * width < h * w
  interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
  # cv2's area filter takes > 4 channels only for integer shrink factors.
  area_ok = not shrink or (h % height == 0 and w % width == 0)
  if t * c <= _CV2_MAX_CHANNELS and (c * t <= 4 or area_ok):
    # Frames stacked along channels: one cv2 call for the whole clip instead of T calls.
    stacked = np.ascontiguousarray(clip.transpose(1, 2, 0, 3).reshape(h, w, t * c))
    out = cv2.resize(stacked, (width, height), interpolation=interp)
    return out.reshape(height, width, t, c).transpose(2, 0, 1, 3)
  return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in clip])


def short_side_size(height, width, short):
  """(h, w) with the short side equal to `short`, aspect ratio kept."""
  if height <= width:
    return short, max(short, round(width * short / height))
  return max(short, round(height * short / width)), short


def resize_short(clip, short):
  """Resizes so that min(H, W) == short."""
  return resize(clip, *short_side_size(clip.shape[1], clip.shape[2], short))


def crop(clip, top, left, height, width):
  """Crops the same window from every frame; the window must lie inside the frame."""
  _, h, w, _ = clip.shape
  if top < 0 or left < 0 or top + height > h or left + width > w:
    raise ValueError(f'Crop window {(top, left, height, width)} outside a {h}x{w} frame.')
  return clip[:, top:top + height, left:left + width]


def center_crop(clip, size):
  """Square centre crop of side `size` (the short side must be >= size)."""
  _, h, w, _ = clip.shape
  return crop(clip, (h - size) // 2, (w - size) // 2, size, size)


def random_resized_crop_window(rng, height, width, area_range, aspect_range, max_tries=10):
  """Samples an Inception-style crop window (top, left, h, w) inside a height x width frame.

  The window covers a fraction of the frame area drawn uniformly from `area_range`, with an
  aspect ratio w/h drawn log-uniformly from `aspect_range`. After `max_tries` windows that do not
  fit, it falls back to the largest centred window of ratio within the range.
  """
  area = height * width
  log_lo, log_hi = np.log(aspect_range[0]), np.log(aspect_range[1])
  for _ in range(max_tries):
    target = area * rng.uniform(*area_range)
    ratio = np.exp(rng.uniform(log_lo, log_hi))
    w = int(round(np.sqrt(target * ratio)))
    h = int(round(np.sqrt(target / ratio)))
    if 0 < w <= width and 0 < h <= height:
      return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
  ratio = float(np.clip(width / height, aspect_range[0], aspect_range[1]))
  h, w = (height, min(width, int(round(height * ratio))))
  if w == width:
    h = min(height, int(round(width / ratio)))
  return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(clip, rng, size, area_range=(0.08, 1.0), aspect_range=(0.75, 4 / 3)):
  """Scale/aspect jitter: a random window (same for all frames) resized to size x size."""
  window = random_resized_crop_window(rng, clip.shape[1], clip.shape[2], area_range, aspect_range)
  return resize(crop(clip, *window), size, size)


def horizontal_flip(clip):
  """Mirrors every frame left-right."""
  return clip[:, :, ::-1]


def random_horizontal_flip(clip, rng, prob=0.5):
  """Flips the whole clip with probability `prob`."""
  return horizontal_flip(clip) if rng.uniform() < prob else clip


def normalize(clip, mean, std):
  """uint8 [0, 255] -> float32 ((x / 255) - mean) / std, per channel."""
  mean = np.asarray(mean, np.float32)
  scale = 1.0 / (255.0 * np.asarray(std, np.float32))
  return (clip.astype(np.float32) * scale - mean / np.asarray(std, np.float32)).astype(np.float32)


def spatial_crops(clip, size, num_crops):
  """Evaluation views: square crops of side `size` along the long side.

  Args:
    clip: [T, H, W, C] with min(H, W) >= size (resize the short side first).
    size: crop side.
    num_crops: 1 (centre) or 3 (start, centre, end of the long side: left/centre/right for
      landscape frames, top/centre/bottom for portrait ones).

  Returns:
    [num_crops, T, size, size, C].
  """
  _, h, w, _ = clip.shape
  if num_crops == 1:
    return center_crop(clip, size)[None]
  if num_crops != 3:
    raise ValueError(f'num_crops must be 1 or 3, got {num_crops}.')
  top, left = (h - size) // 2, (w - size) // 2
  if w >= h:
    windows = [(top, 0), (top, left), (top, w - size)]
  else:
    windows = [(0, left), (top, left), (h - size, left)]
  return np.stack([crop(clip, t, l, size, size) for t, l in windows])
