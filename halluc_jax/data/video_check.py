"""Checks video files for what breaks or degrades training, one file at a time or a whole CSV.

The library of `python -m halluc_jax.check_videos` (README, 'Checking a dataset's videos').
`check_video` is a pure function of the file and the `Limits`; it asks the training reader
(`halluc_jax.data.video`) the same questions the pipeline will, so a file passes exactly when
training can use it. Problems, blocking first:

* missing: no such file (the annotation reader drops the row).
* no_video_stream: the file opens but holds no video (audio only, cover art only).
* unreadable: `probe` or the decode of the first and last frame fails (the reader's message);
  the pipeline would serve zero clips with valid=0.
* too_short: fewer than `min_frames` frames (a clip of config.data.num_frames repeats frames).
* truncated (warning): the container header promises more frames than the file holds, by more
  than max(2, 1%); the reader serves the frames that are there.
* rotated (warning): display-matrix side data or a `rotate` tag turns the picture; the reader
  turns frames upright, other tools (target sources, players) may not.
* vfr (warning): presentation-time steps of the first `vfr_frames` frames (display order, so
  B-frame reordering is not VFR) spread by more than `vfr_tolerance` x their median plus one
  time-base tick (the tick absorbs rounding, e.g. 33/34 ms at 30 fps in mkv); the reader holds
  frames on a constant grid (docs of `video`).
* odd_resolution (warning): odd width or height, short side below `min_side`, or long / short
  side above `max_aspect`.

Frames in the middle are not decoded: a corrupt packet there is found only when a clip needs it
(the pipeline then logs it and serves valid=0).
"""
import dataclasses
import functools
import logging
import multiprocessing
import os

import av
import numpy as np
import tqdm

from halluc_jax.data import clips
from halluc_jax.data import video

BLOCKING = ('missing', 'no_video_stream', 'unreadable', 'too_short')
WARNINGS = ('truncated', 'rotated', 'vfr', 'odd_resolution')
PROBLEMS = BLOCKING + WARNINGS
# Frames a decoder may hold back for reordering (H.264 / HEVC allow at most 16).
_REORDER_DEPTH = 16


@dataclasses.dataclass(frozen=True)
class Limits:
  """Thresholds of the checks (the module docstring says what each one means)."""
  min_frames: int = 16  # config.data.num_frames of the default config
  min_side: int = 32
  max_aspect: float = 3.0
  vfr_frames: int = 64
  vfr_tolerance: float = 0.1


def check_video(path, limits=Limits()):
  """Checks one file; returns {'problems': {name: message}, 'info': dict or None}.

  `info` (num_frames, fps, height, width as displayed, rotation, codec) is set when the reader
  can probe the file. Never raises for a bad file: an error the reader does not expect is
  reported as unreadable, with its type.
  """
  if not os.path.exists(path):
    return {'problems': {'missing': 'file does not exist'}, 'info': None}
  try:
    return _check_readable(path, limits)
  except clips.DECODE_ERRORS as e:
    if _has_no_video_stream(path):
      return {'problems': {'no_video_stream': str(e)}, 'info': None}
    return {'problems': {'unreadable': str(e)}, 'info': None}
  except Exception as e:  # pylint: disable=broad-except  # One odd file must not stop the run.
    return {'problems': {'unreadable': f'unexpected {type(e).__name__}: {e}'}, 'info': None}


def _check_readable(path, limits):
  info = video.probe(path)
  video.read_frames(path, [0, info.num_frames - 1])  # What the pipeline's first read does.
  header_frames, codec, steps, tick, rates = _stream_facts(path, limits.vfr_frames)
  problems = {}
  if info.num_frames < limits.min_frames:
    problems['too_short'] = f'{info.num_frames} frames < min_frames={limits.min_frames}'
  if header_frames > 0 and info.num_frames < header_frames - max(2, 0.01 * header_frames):
    problems['truncated'] = (f'the header promises {header_frames} frames, the file holds '
                             f'{info.num_frames}')
  if info.rotation:
    problems['rotated'] = f'displayed turned {info.rotation} degrees clockwise'
  vfr = _vfr(steps, tick, limits)
  if vfr:
    problems['vfr'] = f'{vfr}; container average {rates[0]} fps, r_frame_rate {rates[1]} fps'
  odd = _odd_resolution(info.height, info.width, limits)
  if odd:
    problems['odd_resolution'] = f'{info.width}x{info.height}: {odd}'
  return {'problems': problems,
          'info': {'num_frames': info.num_frames, 'fps': round(info.fps, 3),
                   'height': info.height, 'width': info.width, 'rotation': info.rotation,
                   'codec': codec}}


def _video_streams(container):
  return [s for s in container.streams.video
          if not s.disposition & av.stream.Disposition.attached_pic]


def _has_no_video_stream(path):
  try:
    with av.open(path, metadata_errors='ignore') as container:
      return not _video_streams(container)
  except (av.FFmpegError, OSError):
    return False  # Not a media file at all: unreadable.


def _stream_facts(path, num_packets):
  """(header frame count, codec, sorted pts steps of the first packets, tick s, (avg, r) rate)."""
  with av.open(path, metadata_errors='ignore') as container:
    stream = _video_streams(container)[0]
    pts = []
    try:
      for packet in container.demux(stream):
        if packet.size and packet.pts is not None and not packet.is_discard:
          pts.append(packet.pts)
          if len(pts) >= num_packets + _REORDER_DEPTH:
            break
    except av.FFmpegError:
      pass  # A damaged tail the reader reads around: judge the timestamps before it.
    # Packets come in decode order: with B-frames the last ones of the window are shown after
    # frames not yet demuxed, so only the lowest num_packets pts are consecutive in display.
    pts = np.sort(pts)[:num_packets]
    tick = float(stream.time_base) if stream.time_base else 0.0
    rates = tuple(round(float(r), 3) if r else None
                  for r in (stream.average_rate, stream.base_rate))
    return stream.frames, stream.codec_context.name, np.diff(pts) * tick, tick, rates


def _vfr(steps, tick, limits):
  """A message when the frame steps (seconds) vary beyond the tolerance, else ''."""
  if len(steps) < 2:
    return ''  # No timestamps (raw streams) or too few frames to tell.
  median = float(np.median(steps))
  if median <= 0:
    return f'repeated timestamps over the first {len(steps) + 1} frames'
  if steps.max() - steps.min() <= limits.vfr_tolerance * median + tick:
    return ''
  return (f'frame steps {steps.min() * 1e3:.1f}-{steps.max() * 1e3:.1f} ms (median '
          f'{median * 1e3:.1f}) over the first {len(steps) + 1} frames')


def _odd_resolution(height, width, limits):
  reasons = []
  if height % 2 or width % 2:
    reasons.append('odd width or height (4:2:0 chroma needs even sizes)')
  if min(height, width) < limits.min_side:
    reasons.append(f'short side < min_side={limits.min_side}')
  if max(height, width) > limits.max_aspect * min(height, width):
    reasons.append(f'aspect ratio beyond {limits.max_aspect:g}:1')
  return '; '.join(reasons)


def _quiet():
  """Worker set-up: the reader's one-line warnings are in the report already."""
  logging.getLogger().setLevel(logging.ERROR)


def check_paths(paths, limits=Limits(), workers=0, progress=True):
  """`check_video` over `paths` (duplicates checked once); returns {path: result}.

  Args:
    paths: video paths.
    limits: thresholds.
    workers: 0 checks in this process; N > 0 uses N spawned processes.
    progress: show a tqdm bar on stderr.
  """
  unique = list(dict.fromkeys(paths))
  check = functools.partial(check_video, limits=limits)
  bar = functools.partial(tqdm.tqdm, total=len(unique), unit='video', disable=not progress)
  if workers <= 0 or len(unique) < 2:
    return dict(zip(unique, bar(map(check, unique))))
  chunk = max(1, min(16, len(unique) // (8 * workers)))
  with multiprocessing.get_context('spawn').Pool(workers, initializer=_quiet) as pool:
    return dict(zip(unique, bar(pool.imap(check, unique, chunksize=chunk))))


def counts(results):
  """{problem: number of results with it}, every problem listed, in PROBLEMS order."""
  return {p: sum(p in r['problems'] for r in results) for p in PROBLEMS}


def keeps(result, drop_warnings=False):
  """Whether a row whose video gave `result` stays in the cleaned CSV."""
  dropped = PROBLEMS if drop_warnings else BLOCKING
  return not any(p in result['problems'] for p in dropped)
