"""Writes small test videos of many containers, codecs and pixel formats with PyAV.

Every frame carries its own index as a 2x5 grid of black/white cells (bit 0 top-left, 10 bits,
so up to 1024 frames) in the top two thirds and, for colour sources, a red | green | blue band
in the bottom third. Cells are large and saturated, so `read_counter` recovers the index through
lossy codecs, chroma subsampling, grayscale and small downscales: tests check that the RIGHT frame
came back, not just a frame of the right shape.

`make_all(out_dir)` writes the whole zoo and returns {name: VideoSpec}; the bad files
(corrupt, truncated, empty, text) are listed separately in `make_bad_files(out_dir)`.
"""
import dataclasses
import fractions
import os

import av
import numpy as np

COUNTER_BITS = 10
_GRID_ROWS, _GRID_COLS = 2, 5
_FAST_VPX = {'deadline': 'realtime', 'cpu-used': '8'}
# Variable frame rate: gaps of 20, 40 or 80 ms, fixed by a seed.
VFR_TIMES_MS = np.concatenate([[0], np.cumsum(np.random.default_rng(1).choice([20, 40, 80], 59))])


@dataclasses.dataclass(frozen=True)
class VideoSpec:
  """What a fixture video holds, as the reader should report it.

  Attributes:
    path: file path.
    num_frames: frames written.
    fps: nominal frame rate.
    height: upright (displayed) height.
    width: upright (displayed) width.
    rotation: degrees the stored picture is turned clockwise for display (0, 90, 180, 270).
    colour: whether the source has chroma (False for gray sources).
  """
  path: str
  num_frames: int
  fps: float
  height: int
  width: int
  rotation: int = 0
  colour: bool = True


def frame_pattern(index, height, width, colour=True):
  """Returns the upright uint8 RGB frame [height, width, 3] that encodes `index`."""
  if not 0 <= index < 2**COUNTER_BITS:
    raise ValueError(f'frame index {index} does not fit in {COUNTER_BITS} bits')
  img = np.zeros((height, width, 3), np.uint8)
  grid_h = height * 2 // 3
  for bit in range(COUNTER_BITS):
    if (index >> bit) & 1:
      r, c = divmod(bit, _GRID_COLS)
      img[_span(r, _GRID_ROWS, grid_h), _span(c, _GRID_COLS, width)] = 255
  band = img[grid_h:]
  if colour:
    for ch in range(3):  # red, green, blue thirds
      band[:, _span(ch, 3, width), ch] = 255
  else:
    band[:, _span(1, 3, width)] = 160
  return img


def _span(i, n, size):
  return slice(i * size // n, (i + 1) * size // n)


def _centre(i, n, size):
  """The middle half of cell i of n along an axis: away from codec ringing at the edges."""
  lo, hi = i * size // n, (i + 1) * size // n
  q = max((hi - lo) // 4, 0)
  return slice(lo + q, max(hi - q, lo + q + 1))


def read_counter(frame):
  """Recovers the index written by `frame_pattern` from an upright uint8 [H, W, 3] frame."""
  height, width = frame.shape[:2]
  luma = frame.astype(np.float32).mean(-1)
  grid_h = height * 2 // 3
  value = 0
  for bit in range(COUNTER_BITS):
    r, c = divmod(bit, _GRID_COLS)
    if luma[_centre(r, _GRID_ROWS, grid_h), _centre(c, _GRID_COLS, width)].mean() > 128:
      value |= 1 << bit
  return value


def band_colours(frame):
  """Mean RGB of the three bottom-band blocks of an upright frame, shape [3 blocks, 3 channels]."""
  height, width = frame.shape[:2]
  grid_h = height * 2 // 3
  band = frame[grid_h + (height - grid_h) // 4: height - (height - grid_h) // 4].astype(np.float32)
  return np.stack([band[:, _centre(i, 3, width)].reshape(-1, 3).mean(0) for i in range(3)])


def write_video(path, *, codec, num_frames, height=48, width=64, fps=25, pix_fmt='yuv420p',
                gop=8, rotation=0, colour=True, options=None, container_options=None, times=None):
  """Encodes `num_frames` counter frames to `path` and returns its VideoSpec.

  Args:
    path: output file; the extension picks the container.
    codec: encoder name ('libx264', 'libvpx-vp9', 'mpeg4', 'mjpeg', 'ffv1', ...).
    num_frames: frames to write.
    height: upright height.
    width: upright width.
    fps: frame rate.
    pix_fmt: encoder pixel format ('gray', 'yuv444p', 'yuv420p10le', 'rgb24', ...).
    gop: keyframe interval.
    rotation: clockwise display rotation in degrees; the stored picture is turned the other way
      and a display matrix is written, as phones do.
    colour: draw the colour band (False for gray sources).
    options: encoder options.
    container_options: muxer options (e.g. {'movflags': 'faststart'}).
    times: optional presentation time of each frame in milliseconds (variable frame rate);
      default i / fps.

  Returns:
    The VideoSpec of the written file.
  """
  stored_h, stored_w = (width, height) if rotation % 180 else (height, width)
  with av.open(path, 'w', options=container_options or {}) as out:
    stream = out.add_stream(codec, rate=fps, options=options or {})
    stream.width, stream.height, stream.pix_fmt = stored_w, stored_h, pix_fmt
    stream.gop_size = gop
    if times is not None:
      stream.codec_context.time_base = stream.time_base = fractions.Fraction(1, 1000)
    if rotation:
      # PyAV's degrees are counter-clockwise (as VideoFrame.rotation reads them back).
      stream.set_display_rotation(-rotation)
    for i in range(num_frames):
      upright = frame_pattern(i, height, width, colour)
      # Store the picture turned counter-clockwise so that the clockwise display turn undoes it.
      stored = np.ascontiguousarray(np.rot90(upright, k=rotation // 90))
      frame = av.VideoFrame.from_ndarray(stored, format='rgb24')
      frame.pts = i if times is None else int(times[i])
      if times is not None:
        frame.time_base = fractions.Fraction(1, 1000)
      out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
  return VideoSpec(path, num_frames, float(fps), height, width, rotation, colour)


# name: (file name, write_video kwargs). Sizes and codecs chosen to cover what users bring.
ZOO = {
    'mp4_h264': ('h264.mp4', dict(codec='libx264', num_frames=96)),
    'webm_vp9': ('vp9.webm', dict(codec='libvpx-vp9', num_frames=60, options=_FAST_VPX)),
    'webm_vp8': ('vp8.webm', dict(codec='libvpx', num_frames=45, options=_FAST_VPX)),
    'avi_mpeg4': ('mpeg4.avi', dict(codec='mpeg4', num_frames=50, options={'qscale': '2'})),
    'avi_mjpeg': ('mjpeg.avi', dict(codec='mjpeg', num_frames=40, pix_fmt='yuvj420p', fps=30)),
    'mkv_ffv1': ('ffv1.mkv', dict(codec='ffv1', num_frames=48)),
    'mkv_h264': ('h264.mkv', dict(codec='libx264', num_frames=70, fps=30)),
    # h264 4:0:0 decodes to yuv420p; png gray decodes to a true 'gray' pix_fmt.
    'mp4_gray_h264': ('gray.mp4', dict(codec='libx264', num_frames=40, pix_fmt='gray',
                                       colour=False)),
    'avi_gray_png': ('gray.avi', dict(codec='png', num_frames=20, pix_fmt='gray', colour=False)),
    'mp4_yuv444p': ('yuv444.mp4', dict(codec='libx264', num_frames=40, pix_fmt='yuv444p')),
    'mp4_10bit': ('10bit.mp4', dict(codec='libx264', num_frames=40, pix_fmt='yuv420p10le')),
    'avi_rgb24': ('rgb24.avi', dict(codec='huffyuv', num_frames=30, pix_fmt='rgb24')),
    'mkv_odd_ffv1': ('odd.mkv', dict(codec='ffv1', num_frames=41, height=47, width=65)),
    'webm_odd_vp9': ('odd.webm', dict(codec='libvpx-vp9', num_frames=33, height=47, width=65,
                                      options=_FAST_VPX)),
    'mp4_rot90': ('rot90.mp4', dict(codec='libx264', num_frames=40, rotation=90)),
    'mp4_rot270': ('rot270.mp4', dict(codec='libx264', num_frames=24, rotation=270)),
    'mp4_long': ('long.mp4', dict(codec='libx264', num_frames=600, gop=30)),
    # Open GOP: B-frames shown before a keyframe but decoded after it. Seeking to them in mp4
    # lands on that keyframe, past the wanted frame: the reader must back off.
    'mp4_open_gop': ('open_gop.mp4', dict(
        codec='libx264', num_frames=200, gop=12,
        options={'x264-params': 'open-gop=1:bframes=3:scenecut=0'})),
    # Keyframes only at 0 and 250: a seek for frame 200 lands at 0, far behind.
    'mp4_long_gop': ('long_gop.mp4', dict(codec='libx264', num_frames=320, gop=250,
                                          options={'x264-params': 'scenecut=0'})),
    'mkv_vfr': ('vfr.mkv', dict(codec='libx264', num_frames=60, times=VFR_TIMES_MS)),
    'mp4_vfr': ('vfr.mp4', dict(codec='libx264', num_frames=60, times=VFR_TIMES_MS)),
    # Raw Annex-B h264: no container timestamps at all, the reader must count frames.
    'h264_raw': ('raw.h264', dict(codec='libx264', num_frames=50)),
}


def make_all(out_dir, names=None):
  """Writes the fixture zoo (or the listed `names`) into out_dir; returns {name: VideoSpec}."""
  os.makedirs(out_dir, exist_ok=True)
  specs = {}
  for name in names or ZOO:
    file_name, kwargs = ZOO[name]
    specs[name] = write_video(os.path.join(out_dir, file_name), **kwargs)
  return specs


def make_bad_files(out_dir):
  """Writes files the reader must refuse or only partly read; returns {name: path or VideoSpec}.

  Paths: random bytes named .mp4, a zero-byte file, a text file named .mp4, an audio-only file
  and a path that does not exist. VideoSpecs (num_frames = frames written): 'truncated_mp4' and
  'truncated_avi' (first half of a faststart mp4 / of an mjpeg avi, whose headers still promise
  every frame) and 'corrupt_frame' (mjpeg avi whose frame 20 holds random bytes).
  """
  os.makedirs(out_dir, exist_ok=True)
  rng = np.random.default_rng(0)
  files = {
      'corrupt': _write_bytes(out_dir, 'corrupt.mp4', rng.bytes(20000)),
      'empty': _write_bytes(out_dir, 'empty.mp4', b''),
      'text': _write_bytes(out_dir, 'notes.mp4', b'this is not a video\n' * 50),
      'audio_only': _write_audio(os.path.join(out_dir, 'audio_only.mkv')),
      'missing': os.path.join(out_dir, 'does_not_exist.mp4'),
  }
  for name, file_name, kwargs in (
      ('truncated_mp4', 'truncated.mp4',
       dict(codec='libx264', container_options={'movflags': 'faststart'})),
      ('truncated_avi', 'truncated.avi', dict(codec='mjpeg', pix_fmt='yuvj420p'))):
    full = write_video(os.path.join(out_dir, 'full_' + file_name), num_frames=80, **kwargs)
    with open(full.path, 'rb') as f:
      data = f.read()
    half = _write_bytes(out_dir, file_name, data[:len(data) // 2])
    files[name] = dataclasses.replace(full, path=half)
  spec = write_video(os.path.join(out_dir, 'corrupt_frame.avi'), codec='mjpeg', num_frames=40,
                     pix_fmt='yuvj420p')
  with av.open(spec.path) as container:
    packet = [p for p in container.demux(video=0) if p.size and p.pts == 20][0]
    pos, size = packet.pos, packet.size
  with open(spec.path, 'r+b') as f:
    f.seek(pos)
    f.write(rng.bytes(size))
  files['corrupt_frame'] = spec
  return files


def _write_bytes(out_dir, name, data):
  path = os.path.join(out_dir, name)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _write_audio(path):
  with av.open(path, 'w') as out:
    stream = out.add_stream('pcm_s16le', rate=8000, layout='mono')
    samples = (np.sin(np.arange(8000) / 10.0) * 1000).astype(np.int16)[None]
    frame = av.AudioFrame.from_ndarray(samples, format='s16', layout='mono')
    frame.sample_rate, frame.pts = 8000, 0
    out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
  return path
