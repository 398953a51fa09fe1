"""Re-encoding one video at a smaller short side, for packing (data/tfds_builder.py).

Decoding a 1080p Kinetics file to crop 224 px spends most of its time on pixels the crop throws
away; a pack stores each video once more, already at the short side the pipeline resizes to
(`config.data.resize_short`, e.g. 256 or 320), as H.264 mp4 bytes (a re-encoded video, not a
list of JPEG frames: a few times smaller, and the same decoder reads it).

The frames are decoded with `video.read_frames` (upright, swscale area resize) and encoded with
the synthetic generator's deterministic x264 settings (`render.write_mp4`), at the source's
frame rate with one frame per index, so frame index i of the new file is frame i of the old (of
the segment's first frame, when a segment is cut out). The whole segment is held in memory while
it is encoded: fine for clips of seconds to a few minutes at 256-320 px.
"""
import fractions
import io

import numpy as np

from halluc_jax.data import sampling
from halluc_jax.data import video
from halluc_jax.data.synthetic import render

FORMAT_VERSION = 1  # bump when the output changes, so caches of re-encoded files are redone


def even_crop(frames):
  """Drops a last odd row / column: yuv420p needs even sides."""
  height, width = frames.shape[1:3]
  return frames[:, :height - height % 2, :width - width % 2]


def reencode(path, short_side, start_s=None, end_s=None, crf=20):
  """mp4 bytes of `path` (or of its segment [start_s, end_s)) with short side `short_side`.

  Args:
    path: a video file, or a `video.EncodedVideo`.
    short_side: the short side of the new file in pixels (> 0; a smaller video is enlarged).
    start_s: segment start in seconds (None: from the first frame).
    end_s: segment end in seconds, exclusive (None: to the last frame).
    crf: x264 constant rate factor (lower = larger and closer to the source).

  Returns:
    (bytes of the mp4, number of frames, frames per second).

  Raises:
    video.VideoReadError: the source cannot be decoded.
    ValueError: short_side <= 0, or the segment holds no frame.
  """
  if short_side <= 0:
    raise ValueError(f'short_side must be positive, got {short_side}.')
  info = video.probe(path)
  first, num_frames = sampling.frame_window(info.num_frames, info.fps, start_s, end_s)
  frames = video.read_frames(path, first + np.arange(num_frames), resize_short=short_side)
  buffer = io.BytesIO()
  # A float rate such as 29.97 back to its exact fraction (30000/1001) for the mp4 time base.
  fps = fractions.Fraction(info.fps).limit_denominator(1001)
  render.write_mp4(buffer, even_crop(frames), fps, crf=crf)
  return buffer.getvalue(), int(num_frames), float(info.fps)
