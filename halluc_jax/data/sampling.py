"""Which frames make a clip: dense (fixed stride), uniform (TSN segments) and multi-clip test views.

All functions are pure numpy and return np.int64 indices in [0, num_frames). A video too short
for the clip is never rejected: dense clips loop over it (index i % num_frames) and uniform clips
repeat frames. Training passes an `np.random.Generator` for a random clip; evaluation passes
None and gets a deterministic clip (centred for dense, segment centres for uniform).
"""
import numpy as np

MODES = ('dense', 'uniform')


def _check(num_frames, clip_len, stride=1, num_clips=1, rng=None):
  for name, value in (('num_frames', num_frames), ('clip_len', clip_len), ('stride', stride),
                      ('num_clips', num_clips)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f'{name} must be a positive integer, got {value!r}')
  if rng is not None and not isinstance(rng, np.random.Generator):
    raise TypeError(f'rng must be a numpy.random.Generator or None, got {type(rng).__name__}')


def _span(clip_len, stride):
  """Frames from the first to the last index of a dense clip, both included."""
  return (clip_len - 1) * stride + 1


def dense_indices(num_frames, clip_len, stride, rng=None):
  """`clip_len` frames `stride` apart (Kinetics-style).

  Args:
    num_frames: frames in the video.
    clip_len: frames in the clip.
    stride: step between consecutive clip frames.
    rng: np.random.Generator for a uniformly random start (training), or None for the clip
      centred in the video (evaluation).

  Returns:
    int64 [clip_len]. If the video is shorter than the clip's span, the clip starts at frame 0
    and loops (i % num_frames), as mmaction2's 'loop' option does.
  """
  _check(num_frames, clip_len, stride, rng=rng)
  max_start = max(num_frames - _span(clip_len, stride), 0)
  start = max_start // 2 if rng is None else int(rng.integers(0, max_start + 1))
  return (start + np.arange(clip_len, dtype=np.int64) * stride) % num_frames


def _segment_edges(num_frames, clip_len):
  return np.linspace(0.0, num_frames, clip_len + 1)


def _in_segments(num_frames, edges, offsets):
  """Frame at relative position offsets (in [0, 1)) of each segment, clipped to the video."""
  idx = np.floor(edges[:-1] + offsets * np.diff(edges)).astype(np.int64)
  return np.minimum(idx, num_frames - 1)


def uniform_indices(num_frames, clip_len, rng=None):
  """One frame from each of `clip_len` equal segments of the video (TSN / SSv2-style).

  Args:
    num_frames: frames in the video.
    clip_len: frames in the clip (= number of segments).
    rng: np.random.Generator for a random frame in each segment (training), or None for each
      segment's centre (evaluation).

  Returns:
    int64 [clip_len], non-decreasing; frames repeat when num_frames < clip_len.
  """
  _check(num_frames, clip_len, rng=rng)
  edges = _segment_edges(num_frames, clip_len)
  offsets = np.full(clip_len, 0.5) if rng is None else rng.random(clip_len)
  return _in_segments(num_frames, edges, offsets)


def multi_clip_indices(num_frames, clip_len, stride, num_clips, mode='dense'):
  """`num_clips` deterministic clips spread over the video, for multi-view testing.

  Args:
    num_frames: frames in the video.
    clip_len: frames per clip.
    stride: step between clip frames (dense mode only).
    num_clips: number of clips.
    mode: 'dense': clip starts evenly spaced (linspace) over the valid start range, first clip at
      the start and last at the end of the video (one clip: centred, as `dense_indices`);
      'uniform': clip k takes the frame at relative position (k + 0.5) / num_clips of every
      segment (one clip: segment centres, as `uniform_indices`).

  Returns:
    int64 [num_clips, clip_len].
  """
  _check(num_frames, clip_len, stride, num_clips)
  if mode == 'dense':
    max_start = max(num_frames - _span(clip_len, stride), 0)
    if num_clips == 1:
      starts = np.array([max_start // 2])
    else:
      starts = np.round(np.linspace(0, max_start, num_clips)).astype(np.int64)
    return (starts[:, None] + np.arange(clip_len, dtype=np.int64) * stride) % num_frames
  if mode == 'uniform':
    edges = _segment_edges(num_frames, clip_len)
    return np.stack([_in_segments(num_frames, edges, np.full(clip_len, (k + 0.5) / num_clips))
                     for k in range(num_clips)])
  raise ValueError(f'unknown sampling mode {mode!r}; expected one of {MODES}')


def sample_indices(mode, num_frames, clip_len, stride, rng=None):
  """One clip with the named strategy: 'dense' (uses stride) or 'uniform' (ignores it)."""
  if mode == 'dense':
    return dense_indices(num_frames, clip_len, stride, rng)
  if mode == 'uniform':
    _check(num_frames, clip_len, stride, rng=rng)
    return uniform_indices(num_frames, clip_len, rng)
  raise ValueError(f'unknown sampling mode {mode!r}; expected one of {MODES}')


def frame_window(num_frames, fps, start_s=None, end_s=None):
  """(first frame, frame count) of the segment [start_s, end_s) of a video; the whole video
  for None bounds.

  Clips of a segment are sampled within it (indices offset by the first frame), so a segment of
  a long video (EPIC-Kitchens) is sampled as a short video would be. A segment that falls
  outside the video, or is shorter than one frame, keeps at least the one frame nearest to it.
  """
  if start_s is None and end_s is None:
    return 0, num_frames
  first = 0 if start_s is None else int(round(float(start_s) * fps))
  stop = num_frames if end_s is None else int(round(float(end_s) * fps))
  first = min(max(first, 0), num_frames - 1)
  stop = min(max(stop, first + 1), num_frames)
  return first, stop - first
