"""One video -> its dense-trajectory descriptors, and the 'idt' source of the bow / fv streams.

`config.extract.idt` (configs/default.py) holds the settings shared by the three IDT streams
(bow_idt, fv1_idt, fv2_idt): the trajectory settings of descriptors/trajectories.py, how frames
are decoded (`resize_short`, `frame_stride`, `max_frames`: the first max_frames frames taken
every frame_stride, 0 = all) and the codebook's (descriptors/codebooks.py). Unlike the other
built-in sources, which see J sampled frames, trajectories need consecutive frames, so this
source decodes its own.

`IdtEncoder` is built by extract_video.sources_for once the codebook is fitted: targets/idt_fit.py
puts the codebook path and fingerprint into the streams' params before the per-video jobs start.
The three streams of one video share one trajectory computation (`video_descriptors` keeps the
last video's descriptors).
"""
import json
import os

import numpy as np

from halluc_jax.data import video as video_io
from halluc_jax.descriptors import codebooks
from halluc_jax.descriptors import trajectories

# Keys of config.extract.idt read by the per-video side (the rest configure the codebook fit).
READ_KEYS = ('resize_short', 'frame_stride', 'max_frames')
TRACK_KEYS = tuple(trajectories.DEFAULTS) + ('flow_method',)
_LAST = {}  # (path, size, mtime, settings json) -> the last video's descriptors, per process


def read_frames(path, settings):
  """uint8 [T, H, W, 3]: the consecutive frames the trajectories run on."""
  info = video_io.probe(path)
  stride = max(1, int(settings.get('frame_stride', 1)))
  indices = np.arange(0, info.num_frames, stride)
  if int(settings.get('max_frames', 0)):
    indices = indices[:int(settings['max_frames'])]
  return video_io.read_frames(path, indices, resize_short=int(settings.get('resize_short', 0))
                              or None)


def video_descriptors(path, settings):
  """float32 [N, 426 at the defaults] trajectory descriptors of one video (parts in PARTS order)."""
  stat = os.stat(path)  # a file replaced under the same name is not served from the memo
  key = (path, stat.st_size, stat.st_mtime_ns, json.dumps(settings, sort_keys=True, default=str))
  if key not in _LAST:
    _LAST.clear()
    frames = read_frames(path, settings)
    parts, _, _ = trajectories.dense_trajectories(
        frames, **{k: settings[k] for k in TRACK_KEYS if k in settings})
    _LAST[key] = trajectories.stack_parts(parts)
  return _LAST[key]


def part_layout(settings):
  """[(part, dims)] of the descriptors `video_descriptors` returns for these settings."""
  dims = trajectories.part_dims(int(settings.get('track_length', 15)),
                                int(settings.get('nxy', 2)), int(settings.get('nt', 3)))
  return [(p, dims[p]) for p in trajectories.PARTS]


class IdtEncoder:
  """The 'idt' source: video path -> (BoW / FV vector or None, stats)."""

  def __init__(self, encoding, settings=None, codebook='', codebook_fingerprint=''):
    if encoding not in codebooks.ENCODINGS:
      raise ValueError(f'idt source: encoding {encoding!r}: expected one of '
                       f'{codebooks.ENCODINGS} (the stream group).')
    if not codebook:
      raise ValueError('idt source: no codebook; the bow / fv idt streams are extracted by '
                       '`python -m halluc_jax.targets.extract`, which fits it on the train split '
                       'first (targets/idt_fit.py).')
    self.encoding, self.settings = encoding, dict(settings or {})
    self.codebook_path, self.fingerprint = codebook, codebook_fingerprint
    self._book = None

  def params(self):
    return {'encoding': self.encoding, 'codebook': self.codebook_path,
            'codebook_fingerprint': self.fingerprint, **self.settings}

  def __call__(self, path):
    if self._book is None:
      self._book, found = codebooks.Codebook.load(self.codebook_path)
      if found != self.fingerprint:
        raise ValueError(f'idt source: {self.codebook_path} has fingerprint {found}, the '
                         f'streams were set up for {self.fingerprint}; rerun the extraction.')
    x = video_descriptors(path, self.settings)
    if not len(x):
      return None, {'num_tracks': 0}
    return self._book.encode(x, self.encoding), {'num_tracks': len(x)}
