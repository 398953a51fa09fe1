"""Renders one 'synthetic actions' clip: cluttered scene, camera shake, sensor noise, H.264 mp4.

`render_clip` turns a class name (of either family, through its `actor_tracks`) and a random
generator into RGB frames plus per-frame object boxes; `write_mp4` encodes frames with libx264
(one thread, fixed GOP, a fixed instruction set, an exact integer RGB -> yuv420p conversion) so
that the same frames always give the same bytes. Drawing uses OpenCV's anti-aliased primitives at 1/16 px precision.
"""
import fractions
import platform

import av
import cv2
import numpy as np
from scipy import ndimage

from halluc_jax.data.synthetic import motion as sc

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


def render_clip(class_name, rng, side, num_frames, actor_tracks=sc.actor_tracks):
  """Renders one clip of `class_name`.

  Args:
    class_name: a class of the family whose `actor_tracks` is given.
    rng: np.random.Generator; the clip is a pure function of its state.
    side: frame height = width in pixels.
    num_frames: clip length.
    actor_tracks: the class family's `(class_name, rng, t) -> tracks` (motion family default).

  Returns:
    frames: uint8 (num_frames, side, side, 3) RGB.
    objects: list of dicts {role, shape, boxes}, boxes[k] = [x0, y0, x1, y1] (pixels, clipped
      to the frame) or None when the object is hidden or off-frame; actors and bystanders
      first, then distractors.
  """
  t = np.linspace(0.0, 1.0, num_frames)
  actors = actor_tracks(class_name, rng, t)
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


# BT.601 limited-range RGB -> Y'CbCr rows, scaled by 2**16 (what decoders assume for untagged SD).
_YUV_FROM_RGB = np.array([[16829, 33039, 6416],      # Y  = 16 + 219/255 (.299 R + .587 G + .114 B)
                          [-9714, -19070, 28784],    # Cb = 128 + 224/255 (B - Y) / 1.772
                          [28784, -24103, -4681]],   # Cr = 128 + 224/255 (R - Y) / 1.402
                         np.int32)


def rgb_to_yuv420p(frames):
  """Exact integer BT.601 limited-range conversion of RGB frames to planar yuv420p.

  Integer arithmetic gives the same bytes on every machine; swscale's SIMD paths are bit-exact
  only with SWS_BITEXACT | SWS_ACCURATE_RND, which PyAV does not set. Chroma is the 2x2 mean.

  Args:
    frames: uint8 (T, H, W, 3) RGB, H and W even.

  Returns:
    uint8 (T, H * 3 // 2, W): per frame the Y plane, then U, then V, each plane's rows
    concatenated (the layout of `av.VideoFrame.from_ndarray(..., format='yuv420p')`).
  """
  t, h, w = frames.shape[:3]
  r, g, b = (frames[..., c].astype(np.int32) for c in range(3))
  ky, ku, kv = _YUV_FROM_RGB
  # Offsets and rounding folded into one constant; results lie in [16, 235] / [16, 240].
  y = (ky[0] * r + ky[1] * g + ky[2] * b + (16 << 16 | 1 << 15)) >> 16
  qr, qg, qb = (c[:, 0::2, 0::2] + c[:, 0::2, 1::2] + c[:, 1::2, 0::2] + c[:, 1::2, 1::2]
                for c in (r, g, b))  # 4 x the 2x2 block means, hence >> 18
  u = (ku[0] * qr + ku[1] * qg + ku[2] * qb + (128 << 18 | 1 << 17)) >> 18
  v = (kv[0] * qr + kv[1] * qg + kv[2] * qb + (128 << 18 | 1 << 17)) >> 18
  n = h * w
  out = np.empty((t, n * 3 // 2), np.uint8)
  out[:, :n], out[:, n:n * 5 // 4], out[:, n * 5 // 4:] = (
      p.reshape(t, -1) for p in (y, u, v))
  return out.reshape(t, -1, w)


# x264's instruction set, fixed rather than detected. Its AVX-512 macroblock-tree code reads heap
# memory it never initialised (frames not a multiple of 128 px wide), so the first GOP changed from
# process to process; and its float SIMD (mbtree) rounds differently per level. SSE2 is in every
# x86-64 CPU and as fast here as auto-detection; elsewhere use plain C.
_X264_ASM = 'SSE2' if platform.machine().lower() in ('x86_64', 'amd64') else '0'


def write_mp4(path, frames, fps, crf=20):
  """Encodes uint8 RGB frames (T, H, W, 3) as H.264 yuv420p, deterministically, into `path`
  (a file name, or a binary buffer such as io.BytesIO).

  The bytes are a pure function of the frames for a given PyAV build, whatever the process or
  x86-64 CPU: exact colour conversion (`rgb_to_yuv420p`, no swscale), one x264 thread, a fixed
  instruction set (`_X264_ASM`) and a fixed GOP (keyframe every `GOP` frames, no scene cuts).
  """
  height, width = frames.shape[1:3]
  if height % 2 or width % 2:
    raise ValueError(f'{path}: yuv420p needs even frame sides, got {width}x{height}')
  rate = fractions.Fraction(fps)
  target = path if hasattr(path, 'write') else str(path)  # a file name or a writable buffer
  with av.open(target, mode='w', format='mp4') as container:
    stream = container.add_stream('libx264', rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.codec_context.thread_count = 1
    stream.codec_context.time_base = 1 / rate
    stream.options = {
        'crf': str(crf), 'preset': 'veryfast', 'threads': '1',
        'x264-params': f'keyint={GOP}:min-keyint={GOP}:scenecut=0:threads=1:sliced-threads=0'
                       f':asm={_X264_ASM}'}
    for k, yuv in enumerate(rgb_to_yuv420p(frames)):
      frame = av.VideoFrame.from_ndarray(yuv, format='yuv420p')  # encoded as is, no reformat
      frame.pts, frame.time_base = k, 1 / rate
      container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
