"""Renders one 'synthetic actions' clip: cluttered scene, camera shake, sensor noise, H.264 mp4.

`render_clip` turns a class name and a random generator into RGB frames plus per-frame object
boxes; `write_mp4` encodes frames with libx264 (one thread, fixed GOP) so that the same frames
always give the same bytes. Drawing uses OpenCV's anti-aliased primitives at 1/16 px precision.
"""
import fractions

import av
import cv2
import numpy as np
from scipy import ndimage

from halluc_jax.data import synthetic_classes as sc

FPS_CHOICES = (12, 15, 20, 24, 25, 30)
GOP = 12  # keyframe interval: readers must really seek, not just decode from the start
DISTRACTOR_RADIUS = (0.035, 0.08)
_SUBPIXEL_BITS = 4


def background(rng, side):
  """A textured side x side uint8 RGB canvas: gradient + smooth noise + stripes + soft blobs."""
  yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
  a = rng.uniform(0, 2 * np.pi)
  ramp = (np.cos(a) * xx + np.sin(a) * yy)[..., None]
  ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
  c0, c1 = (np.array(sc.random_colour(rng), np.float32) * rng.uniform(0.4, 1.0) for _ in range(2))
  canvas = c0 * (1 - ramp) + c1 * ramp
  cells = int(rng.integers(3, 9))
  noise = rng.uniform(-1, 1, (cells, cells, 3)).astype(np.float32)
  canvas += rng.uniform(15, 60) * cv2.resize(noise, (side, side), interpolation=cv2.INTER_CUBIC)
  if rng.random() < 0.6:
    b = rng.uniform(0, 2 * np.pi)
    freq, phase = rng.uniform(2, 9), rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * freq * (np.cos(b) * xx + np.sin(b) * yy) + phase)
    canvas += rng.uniform(8, 35) * stripes[..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
  blobs = np.zeros_like(canvas)
  for _ in range(int(rng.integers(2, 7))):
    centre = tuple(int(v) for v in rng.uniform(0, side, 2))
    axes = tuple(int(v) for v in rng.uniform(0.08, 0.3, 2) * side)
    cv2.ellipse(blobs, centre, axes, rng.uniform(0, 180), 0, 360,
                rng.uniform(-70, 70, 3).tolist(), -1)
  canvas += cv2.GaussianBlur(blobs, (0, 0), side * 0.04)
  return np.clip(canvas, 0, 255).astype(np.uint8)  # uint8: OpenCV anti-aliases only 8-bit


def distractor_tracks(rng, t):
  """2-4 smaller objects wandering at random (smooth turns, reflected at the borders)."""
  tracks = []
  for _ in range(int(rng.integers(2, 5))):
    speed = rng.uniform(0.1, 0.7)  # frame sides per clip
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, len(t)))
    dt = np.diff(t, prepend=0.0)
    pos = rng.uniform(0, 1, 2)[:, None] + speed * np.cumsum(
        np.stack([np.cos(heading), np.sin(heading)]) * dt, axis=1)
    pos = 1 - np.abs(1 - np.mod(pos, 2))  # reflect into [0, 1]
    tracks.append(sc.make_track(rng, t, pos[0], pos[1], role='distractor',
                                radius_range=DISTRACTOR_RADIUS))
  return tracks


def camera_shake(rng, num_frames, side):
  """Integer (dx, dy) per frame: a slow smoothed wander plus a per-frame tremor."""
  amp = rng.uniform(0.005, 0.035) * side
  walk = np.cumsum(rng.normal(0, 1, (num_frames, 2)), axis=0)
  walk = ndimage.gaussian_filter1d(walk, 2.0, axis=0)
  walk = walk - walk.mean(axis=0)
  walk = amp * walk / max(np.abs(walk).max(), 1e-6)
  tremor = rng.normal(0, rng.uniform(0, 0.8), (num_frames, 2))
  return np.round(walk + tremor).astype(int)


def shape_outline(shape, cx, cy, radius, angle):
  """Polygon vertices (k, 2) of a shape; circles get a 24-gon (used for boxes only)."""
  sides = {'circle': 24, 'square': 4, 'triangle': 3, 'diamond': 4, 'hexagon': 6, 'star': 10}[shape]
  phis = angle + 2 * np.pi * np.arange(sides) / sides
  radii = np.full(sides, radius)
  if shape == 'diamond':
    radii *= np.where(np.arange(sides) % 2 == 0, 1.0, 0.6)
  elif shape == 'star':
    radii *= np.where(np.arange(sides) % 2 == 0, 1.0, 0.45)
  elif shape == 'square':
    radii *= 0.9
  return np.stack([cx + radii * np.cos(phis), cy + radii * np.sin(phis)], axis=1)


def draw_object(frame, track, k, side, offset):
  """Draws frame k of `track` into `frame` (in place); returns its box or None if unseen."""
  if not track.visible[k]:
    return None
  cx, cy = track.x[k] * side - offset[0], track.y[k] * side - offset[1]
  r = track.radius[k] * side
  pts = shape_outline(track.shape, cx, cy, r, track.angle[k])
  scale = 1 << _SUBPIXEL_BITS
  if track.shape == 'circle':
    centre = (int(round(cx * scale)), int(round(cy * scale)))
    cv2.circle(frame, centre, int(round(r * scale)), track.colour, -1, cv2.LINE_AA, _SUBPIXEL_BITS)
    if track.outline:
      cv2.circle(frame, centre, int(round(r * scale)), _darker(track.colour), 1, cv2.LINE_AA,
                 _SUBPIXEL_BITS)
  else:
    poly = [np.round(pts * scale).astype(np.int32)]
    cv2.fillPoly(frame, poly, track.colour, cv2.LINE_AA, _SUBPIXEL_BITS)
    if track.outline:
      cv2.polylines(frame, poly, True, _darker(track.colour), 1, cv2.LINE_AA, _SUBPIXEL_BITS)
  x0, y0 = np.clip(pts.min(axis=0), 0, side)
  x1, y1 = np.clip(pts.max(axis=0), 0, side)
  if x1 <= x0 or y1 <= y0:
    return None
  return [round(float(v), 1) for v in (x0, y0, x1, y1)]


def _darker(colour):
  return tuple(int(c * 0.4) for c in colour)


def render_clip(class_name, rng, side, num_frames):
  """Renders one clip of `class_name`.

  Args:
    class_name: a key of `synthetic_classes.CLASSES`.
    rng: np.random.Generator; the clip is a pure function of its state.
    side: frame height = width in pixels.
    num_frames: clip length.

  Returns:
    frames: uint8 (num_frames, side, side, 3) RGB.
    objects: list of dicts {role, shape, boxes}, boxes[k] = [x0, y0, x1, y1] (pixels, clipped
      to the frame) or None when the object is hidden or off-frame; actors and bystanders
      first, then distractors.
  """
  t = np.linspace(0.0, 1.0, num_frames)
  actors = sc.actor_tracks(class_name, rng, t)
  distractors = distractor_tracks(rng, t)
  above = [d for d in distractors if rng.random() < 0.3]  # some distractors occlude actors
  below = [d for d in distractors if not any(d is a for a in above)]
  order = below + actors + above
  margin = int(np.ceil(0.05 * side)) + 2
  canvas = background(rng, side + 2 * margin)
  shake = camera_shake(rng, num_frames, side)
  noise_sigma = rng.uniform(2.0, 9.0)
  flicker = 1 + rng.uniform(0, 0.06) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t
                                             + rng.uniform(0, 6.3))
  boxes = {id(tr): [] for tr in order}
  frames = np.empty((num_frames, side, side, 3), np.uint8)
  for k in range(num_frames):
    ox, oy = np.clip(shake[k], -margin, margin)
    frame = canvas[margin + oy:margin + oy + side, margin + ox:margin + ox + side].copy()
    for tr in order:
      boxes[id(tr)].append(draw_object(frame, tr, k, side, (ox, oy)))
    noise = noise_sigma * rng.standard_normal(frame.shape, np.float32)
    frame = frame * np.float32(flicker[k]) + noise
    frames[k] = np.clip(frame, 0, 255).astype(np.uint8)
  objects = [{'role': tr.role, 'shape': tr.shape, 'boxes': boxes[id(tr)]}
             for tr in actors + distractors]
  return frames, objects


def write_mp4(path, frames, fps, crf=20):
  """Encodes uint8 RGB frames (T, H, W, 3) as H.264 yuv420p, deterministically.

  One encoder thread and a fixed GOP (keyframe every `GOP` frames, no scene-cut keyframes)
  make the bytes a pure function of the frames.
  """
  height, width = frames.shape[1:3]
  if height % 2 or width % 2:
    raise ValueError(f'{path}: yuv420p needs even frame sides, got {width}x{height}')
  rate = fractions.Fraction(fps)
  with av.open(str(path), mode='w', format='mp4') as container:
    stream = container.add_stream('libx264', rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.codec_context.thread_count = 1
    stream.codec_context.time_base = 1 / rate
    stream.options = {
        'crf': str(crf), 'preset': 'veryfast', 'threads': '1',
        'x264-params': f'keyint={GOP}:min-keyint={GOP}:scenecut=0:threads=1:sliced-threads=0'}
    for k, rgb in enumerate(frames):
      frame = av.VideoFrame.from_ndarray(rgb, format='rgb24')
      frame.pts, frame.time_base = k, 1 / rate
      container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
