"""Video decoding with PyAV: probe a file, read the RGB frames at given indices.

Frame index i is the i-th frame in presentation order for constant-frame-rate video. It is found
from timestamps, index = round((pts * time_base - start_time) * fps), so the reader can seek to the
keyframe at or before the first wanted frame, decode forward, and seek again across long gaps.

Variable frame rate: `probe` counts the coded frames N and `fps` is the average rate (N / duration
when the container's rate disagrees with it). Index i then means "the frame on screen at time
i / fps": a grid slot without a frame of its own gets the frame before it (sample-and-hold, as a
player shows it), so every index in [0, N) maps to a real frame and clips keep their duration.
AVI files whose header counts dropped-frame slots (e.g. OpenCV's tree.avi) behave the same way:
the header count stands and a dropped slot holds the previous frame.
Streams without usable timestamps are read by counting frames from the start instead, with no
seeking: raw .h264 (no pts), Xvid AVI with packed B-frames and mp4 muxed without composition
offsets (pts go backwards in display order). Frames and counts then follow decoder output order.

In-memory videos: every function taking a `path` also takes an `EncodedVideo` (a name and the
container's bytes, e.g. one record of a TFDS pack, data/tfds_pack.py), decoded from memory with
no file written; its name stands for the path in messages.

Errors: a missing, empty, non-media, corrupt or audio-only file raises `VideoReadError` naming the
path and the reason. A truncated file serves the frames it still holds: `probe` counts only the
complete ones (and logs the truncation). A wanted frame that cannot be decoded (its packet is
corrupt, or it lies past a cut the count missed) raises `VideoReadError`; frames are all or none.
"""
import collections
import contextlib
import fractions
import functools
import io
import logging
import os
from typing import NamedTuple

import av
import numpy as np

from halluc_jax.data import frame_rgb

# Decode through gaps up to this many frames (or two keyframe intervals, if larger): seeking back
# to a keyframe we already passed costs more than decoding on.
SEEK_MIN_GAP = 64
# A seek that lands past the wanted frame is retried this many frames earlier, then from the start.
_SEEK_BACKOFF = (8, 64)


class VideoReadError(Exception):
  """A video file cannot be read; the message names the path and the reason."""


class VideoInfo(NamedTuple):
  """What `probe` reports. height and width are after rotation (as displayed).

  Attributes:
    num_frames: exact number of frames (valid indices are [0, num_frames)).
    fps: frames per second used to map timestamps to indices (average rate for VFR video).
    height: displayed height in pixels.
    width: displayed width in pixels.
    rotation: clockwise degrees (0, 90, 180, 270) the stored picture is turned for display.
  """
  num_frames: int
  fps: float
  height: int
  width: int
  rotation: int


class EncodedVideo(NamedTuple):
  """A video container held in memory (a TFDS record's bytes), accepted wherever a path is.

  Attributes:
    name: stands for the path in messages and in the probe cache; unique per video.
    data: the encoded container (mp4, webm, ...) as bytes.
  """
  name: str
  data: bytes

  def __str__(self):
    return self.name


_ENCODED_PROBES = collections.OrderedDict()  # (name, size) -> probe result, the newest last
_ENCODED_PROBE_CACHE = 256


def _fail(path, reason):
  return VideoReadError(f"cannot decode video '{path}': {reason}")


def _close(a, b, num_frames):
  return abs(a - b) <= max(1.5, 0.01 * num_frames)


@functools.lru_cache(maxsize=4096)
def _probe_cached(path, mtime_ns, size):
  del mtime_ns  # Cache key only: a rewritten file is probed again.
  return _probe_uncached(path, size)


def _probe_encoded(encoded):
  """`_probe_uncached` of an EncodedVideo, cached by (name, size) without keeping its bytes."""
  key = (encoded.name, len(encoded.data))
  result = _ENCODED_PROBES.get(key)
  if result is None:
    if not encoded.data:
      raise _fail(encoded, 'empty file')
    result = _ENCODED_PROBES[key] = _probe_uncached(encoded, len(encoded.data))
    while len(_ENCODED_PROBES) > _ENCODED_PROBE_CACHE:  # loader threads share it: tolerate races
      try:
        _ENCODED_PROBES.popitem(last=False)
      except KeyError:
        break
  return result


def _probe_uncached(path, size):
  with _open(path) as (container, stream):
    first = next(_decoded(stream, container.demux(stream), {}), None)
    if first is None:
      raise _fail(path, 'no decodable video frame')
    rate, duration = _nominal_rate(stream), _duration(container, stream)
    num_frames = _indexed_frame_count(path, stream, size, duration, rate)
  if num_frames is None:
    with _open(path) as (container, stream):
      num_frames, span = _count_packets(container, stream, rate)
    if duration and span and span < duration - 2 / (rate or 1):
      _warn_once(path, f'frames span {span:.2f}s of the {duration:.2f}s the header promises: '
                       'truncated?')
    if span and (not rate or not _close(num_frames, span * rate, num_frames)):
      rate = fractions.Fraction(num_frames) / fractions.Fraction(span)  # VFR: average rate.
  if not rate:
    raise _fail(path, 'no frame rate and no timestamps to place frames in time')
  rotation = _rotation(first, stream)
  height, width = first.height, first.width
  if rotation % 180:
    height, width = width, height
  return VideoInfo(int(num_frames), float(rate), height, width, rotation), rate


def probe(path):
  """Returns the VideoInfo of `path`: exact frame count, fps, displayed size, rotation.

  The count comes from the container's sample index when it agrees with duration * fps, else
  from demuxing every packet of the video stream (no decoding; webm/mkv store no count).
  The first frame is decoded to check the file and read its rotation. Results are cached per
  process by (path, mtime, size), so `read_frames` after `probe` does not probe twice.

  Raises:
    VideoReadError: missing, empty, non-video, corrupt or undecodable file.
  """
  return _probe_with_rate(path)[0]


def _probe_with_rate(path):
  if isinstance(path, EncodedVideo):
    return _probe_encoded(path)
  try:
    st = os.stat(path)
  except FileNotFoundError:
    raise _fail(path, 'file does not exist') from None
  except OSError as e:
    raise _fail(path, e.strerror or str(e)) from None
  if os.path.isdir(path):
    raise _fail(path, 'is a directory')
  if st.st_size == 0:
    raise _fail(path, 'empty file')
  return _probe_cached(os.path.abspath(path), st.st_mtime_ns, st.st_size)


@contextlib.contextmanager
def _open(path, threads=1):
  """Opens `path` (or an EncodedVideo); yields (container, its first video stream) and closes
  the container."""
  source = io.BytesIO(path.data) if isinstance(path, EncodedVideo) else path
  try:
    container = av.open(source, metadata_errors='ignore')
  except av.FFmpegError as e:
    raise _fail(path, f'not a readable media file ({e.strerror})') from None
  with container:
    streams = [s for s in container.streams.video
               if not s.disposition & av.stream.Disposition.attached_pic]  # Not cover art.
    if not streams:
      raise _fail(path, 'no video stream')
    if streams[0].codec_context is None:
      raise _fail(path, 'no decoder for its codec')
    if threads != 1:
      streams[0].thread_type = 'AUTO'  # Frame + slice threads; PyAV flushes them on each seek.
      streams[0].thread_count = threads
    try:
      yield container, streams[0]
    except av.FFmpegError as e:  # Anything the reader did not expect (pix_fmt, seek, I/O...).
      raise _fail(path, f'{type(e).__name__}: {e.strerror}') from e


def _nominal_rate(stream):
  for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
    if rate and rate > 0:
      return fractions.Fraction(rate)
  return None


def _duration(container, stream):
  """Seconds of video as the container states it, or None."""
  if stream.duration:
    return float(stream.duration * stream.time_base)
  if container.duration:
    return container.duration / av.time_base
  return None


def _indexed_frame_count(path, stream, file_size, duration, rate):
  """Frame count from the container's sample index or header, or None to count packets."""
  if stream.frames <= 0:
    return None  # webm / mkv store no count.
  entries = stream.index_entries
  num = stream.frames
  if len(entries) == stream.frames:
    # Full sample index (mp4, avi): drop edit-list discards and samples cut off by truncation.
    kept = [e for e in entries if not e.is_discard]
    num = sum(1 for e in kept if e.pos + e.size <= file_size)
    if num < len(kept):
      _warn_once(path, f'only {num} of {len(kept)} indexed frames are in the file: truncated?')
      return num
  if duration and rate and not _close(num, duration * rate, num):
    return None  # Header and duration disagree (VFR, edit lists, bad header): count packets.
  return num


def _count_packets(container, stream, rate):
  """Demuxes (no decoding) to count frames; returns (count, seconds they span or None)."""
  count, first, last, last_duration = 0, None, None, 0
  try:
    for packet in container.demux(stream):
      if packet.size and not packet.is_discard and not packet.is_corrupt:  # Corrupt: cut off.
        count += 1
        if packet.pts is not None:
          first = packet.pts if first is None else min(first, packet.pts)
          if last is None or packet.pts >= last:
            last, last_duration = packet.pts, packet.duration or 0
  except av.FFmpegError:
    pass  # A damaged tail: count what came before it.
  if last is None:
    return count, None
  tail = last_duration * stream.time_base if last_duration else (1 / rate if rate else 0)
  return count, float((last - first) * stream.time_base + tail)


def _rotation(frame, stream):
  """Clockwise display rotation in {0, 90, 180, 270} from the display matrix or `rotate` tag."""
  ccw = frame.rotation  # Display matrix side data, counter-clockwise degrees.
  if not ccw and stream.metadata.get('rotate', '').lstrip('-').isdigit():
    return round(int(stream.metadata['rotate']) / 90) % 4 * 90  # Old muxers: clockwise tag.
  return round(-ccw / 90) % 4 * 90


def _decoded(stream, packets, stats):
  """Yields decoded frames; skips (and counts) corrupt packets; stops early on a broken file."""
  try:
    for packet in packets:
      if packet.size == 0:
        continue  # Empty packets would put the decoder into draining mode.
      try:
        frames = stream.decode(packet)
      except av.FFmpegError:
        stats['decode_errors'] = stats.get('decode_errors', 0) + 1
        continue
      for frame in frames:
        stats['decoded'] = stats.get('decoded', 0) + 1
        yield frame
    frames = stream.decode(None)  # Drain frames held back for reordering / threading.
  except av.FFmpegError:  # Demuxing a truncated or damaged file.
    stats['stream_errors'] = stats.get('stream_errors', 0) + 1
    return
  for frame in frames:
    stats['decoded'] = stats.get('decoded', 0) + 1
    yield frame


def read_frames(path, indices, *, resize_short=None, decode_threads=1, stats=None,
                rgb_conversion='swscale'):
  """Decodes the frames at `indices` (any order, repeats allowed) as upright RGB.

  Seeks to the keyframe at or before the first wanted frame, decodes forward and seeks again
  when the next wanted frame is more than max(SEEK_MIN_GAP, 2 keyframe intervals) ahead; only
  the wanted frames are converted to RGB.

  Args:
    path: video file.
    indices: integer frame indices in [0, probe(path).num_frames).
    resize_short: if set, frames are resized so their short side has this length, keeping the
      aspect ratio (area averaging when shrinking, bilinear when enlarging).
    decode_threads: 1 decodes on the calling thread (best when many loader processes decode in
      parallel); 0 lets FFmpeg pick, n > 1 uses n frame/slice threads.
    rgb_conversion: 'swscale' (PyAV's rgb24 conversion, with the resize in the same pass) or
      'opencv' (cv2's, for plain yuv420p frames: faster, within 3 levels of swscale's).
    stats: optional dict, filled with counters: 'decoded' (frames out of the decoder), 'seeks',
      'held' (indices served by the previous frame: VFR gaps, dropped AVI slots), 'decode_errors',
      'stream_errors' and 'mode' ('pts', or 'count' for streams with broken timestamps).

  Returns:
    uint8 array [len(indices), H, W, 3], H and W as `probe` reports them (or resized).

  Raises:
    ValueError: an index is out of range (the message lists them).
    VideoReadError: the file cannot be read, or a wanted frame cannot be decoded (its packet is
      corrupt, or it lies past a truncation).
  """
  indices = np.asarray(indices)
  if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
    raise ValueError(f"frame indices for '{path}' must be a 1-D integer sequence, got "
                     f'shape {indices.shape} dtype {indices.dtype}')
  indices = indices.astype(np.int64)
  info, rate = _probe_with_rate(path)
  bad = np.unique(indices[(indices < 0) | (indices >= info.num_frames)])
  if bad.size:
    raise ValueError(f"frame indices {bad[:10].tolist()}{' ...' if bad.size > 10 else ''} out "
                     f"of range for '{path}', which has {info.num_frames} frames")
  out_h, out_w = frame_rgb.output_size(info.height, info.width, resize_short)
  out = np.empty((len(indices), out_h, out_w, 3), np.uint8)
  if not indices.size:
    return out
  stats = {} if stats is None else stats
  stats.update(decoded=0, seeks=0, held=0, decode_errors=0, stream_errors=0, mode='pts')
  if rgb_conversion not in frame_rgb.RGB_CONVERSIONS:
    raise ValueError(f'rgb_conversion={rgb_conversion!r}; expected one of '
                     f'{frame_rgb.RGB_CONVERSIONS} '
                     '(config.data.rgb_conversion).')
  convert = functools.partial(frame_rgb.to_rgb, rotation=info.rotation, size=(out_h, out_w),
                              conversion=rgb_conversion)
  wanted = np.unique(indices).tolist()
  try:
    got = _read_by_pts(path, wanted, rate, decode_threads, convert, stats)
  except _BrokenTimestamps as e:
    _warn_once(path, f'{e}; reading by counting frames from the start, without seeking')
    stats.update(decoded=0, seeks=0, held=0, decode_errors=0, stream_errors=0, mode='count')
    got = _read_by_count(path, wanted, decode_threads, convert, stats)
  if stats['decode_errors'] or stats['stream_errors']:
    _warn_once(path, f"{stats['decode_errors']} corrupt packets skipped, {stats['stream_errors']} "
                     f"demux errors, {stats['held']} indices got the previous frame")
  for i, idx in enumerate(indices.tolist()):
    out[i] = got[idx]
  return out


@functools.lru_cache(maxsize=1024)
def _warn_once(path, message):
  logging.warning("video '%s': %s", path, message)


class _BrokenTimestamps(Exception):
  """Timestamps cannot place frames; the caller falls back to counting."""


class _KeyframeGaps:
  """Tracks keyframe spacing seen while decoding, to decide between seeking and decoding on."""

  def __init__(self):
    self.last_key, self.widest = None, 0

  def observe(self, idx, is_key):
    if is_key:
      if self.last_key is not None and idx > self.last_key:
        self.widest = max(self.widest, idx - self.last_key)
      self.last_key = idx

  def seek_gap(self, pos):
    """Gaps wider than this are crossed by seeking. The interval is at least pos - last_key."""
    since_key = pos - self.last_key if self.last_key is not None else 0
    return max(SEEK_MIN_GAP, 2 * max(self.widest, since_key))


class _Shown:
  """The last decoded frame: its index, lazily its RGB, and the decode errors before it."""

  def __init__(self, idx, frame, errors):
    self.idx, self.frame, self.errors, self.rgb = idx, frame, errors, None

  def hold(self, indices, got, convert, stats):
    """Serves `indices` (no frame of their own) with this frame, still on screen for them."""
    if self.rgb is None:
      self.rgb = convert(self.frame)
    got.update((i, self.rgb) for i in indices)
    stats['held'] += len(indices)


def _read_by_pts(path, wanted, rate, threads, convert, stats):
  """Returns {index: rgb} for the sorted unique `wanted`, placing frames by their pts."""
  got, pending = {}, collections.deque(wanted)
  with _open(path, threads) as (container, stream):
    start, tb = stream.start_time, stream.time_base
    if start is None or not tb:
      raise _BrokenTimestamps('stream has no start time')
    gaps, frames, shown, attempt, sought = _KeyframeGaps(), None, None, 0, -1
    while pending:
      # Seek at most once per wanted frame (plus back-off retries): a seek may land far before
      # it, on a keyframe we already passed, and must then be decoded through, not repeated.
      if frames is None or (pending[0] > sought and
                            pending[0] - shown.idx > gaps.seek_gap(shown.idx)):
        if stats['seeks'] > 4 * len(wanted) + 8:  # Guard against demuxers that seek erratically.
          raise _BrokenTimestamps(f"{stats['seeks']} seeks for {len(wanted)} frames")
        frames = _seek(container, stream, pending[0], attempt, rate, stats)
        gaps.last_key, shown, sought = None, None, pending[0]
      frame = next(frames, None)
      if frame is None:  # End of stream: the last frame stays on screen, unless the file is cut.
        if shown is None or not _ended_cleanly(shown, container, stream, rate, stats):
          raise _missing(path, pending, shown)
        shown.hold(list(pending), got, convert, stats)
        break
      if frame.pts is None:
        raise _BrokenTimestamps('a frame has no pts')
      idx = round((frame.pts - start) * tb * rate)
      if shown is None and idx > pending[0]:  # Landed past the wanted frame: seek further back.
        if attempt > len(_SEEK_BACKOFF):
          raise _BrokenTimestamps(f'the first frame after seeking to the start is frame {idx}')
        attempt, frames = attempt + 1, None
        continue
      if shown is not None and idx < shown.idx:
        raise _BrokenTimestamps(f'pts goes backwards (frame {idx} after {shown.idx})')
      attempt = 0
      gaps.observe(idx, frame.key_frame)
      skipped = []
      while pending and pending[0] < idx:
        skipped.append(pending.popleft())
      if skipped:  # No frame of their own: VFR, unless a packet in between failed to decode.
        if stats['decode_errors'] > shown.errors:
          raise _missing(path, skipped, shown)
        shown.hold(skipped, got, convert, stats)
      shown = _Shown(idx, frame, stats['decode_errors'])
      if pending and pending[0] == idx:
        shown.rgb = got[pending.popleft()] = convert(frame)
  return got


def _seek(container, stream, index, attempt, rate, stats):
  """Positions the demuxer at the keyframe at or before `index`; returns the frame iterator.

  Attempt k > 0 retries _SEEK_BACKOFF[k - 1] frames earlier (the demuxer landed past the frame,
  as mp4 does with open-GOP leading frames), and finally from the start.
  """
  if not stats['decoded'] and not stats['seeks'] and index <= SEEK_MIN_GAP:
    return _decoded(stream, container.demux(stream), stats)  # Near the start: no seek needed.
  back = (0,) + _SEEK_BACKOFF
  target = max(index - back[attempt], 0) if attempt < len(back) else 0
  # Aim half a frame early so that rounding never puts the target after the frame's pts.
  pts = stream.start_time + max(0, int(np.floor((target - 0.5) / rate / stream.time_base)))
  try:
    container.seek(pts, stream=stream, backward=True, any_frame=False)
  except av.FFmpegError as e:
    raise _BrokenTimestamps(f'seek failed ({e.strerror})') from None
  stats['seeks'] += 1
  return _decoded(stream, container.demux(stream), stats)


def _ended_cleanly(shown, container, stream, rate, stats):
  """Whether the stream really ended after `shown` (its display time reaches the duration)."""
  if stats['stream_errors'] or stats['decode_errors'] > shown.errors:
    return False
  tb = stream.time_base
  shown_for = shown.frame.duration * tb if shown.frame.duration else 1 / rate
  end = (shown.frame.pts - stream.start_time) * tb + shown_for
  duration = _duration(container, stream)
  return duration is None or end >= duration - 1.5 / rate


def _missing(path, indices, shown):
  where = 'no frame decoded there' if shown is None else f'the last good frame is {shown.idx}'
  return _fail(path, f'frames {list(indices)[:10]} are missing ({where}): file truncated or '
                     'corrupt')


def _read_by_count(path, wanted, threads, convert, stats):
  """Returns {index: rgb}, index = position in decoding output, reading from the start."""
  got, pending, idx = {}, collections.deque(wanted), None
  with _open(path, threads) as (container, stream):
    for idx, frame in enumerate(_decoded(stream, container.demux(stream), stats)):
      if idx == pending[0]:
        got[pending.popleft()] = convert(frame)
        if not pending:
          break
  if pending:
    raise _missing(path, pending, idx)
  return got
