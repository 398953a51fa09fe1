"""Reading a TFDS pack (data/tfds_builder.py) as a dataset: `config.data.source = 'tfds:<name>'`.

The pack's metadata.json holds the class names and, per split, the record table in example
order, so a split's records come without reading a video. Each record's `path` is a
`PackedVideo`: a reference (data dir, name, split, example index) that the clip loaders turn into
the video's bytes with `load()` (data/clips.py), in whichever grain worker decodes it; the TFDS
data source is opened once per process. The rest of the pipeline (sampling, augmentation,
targets joined by video id, checkpointable iterator state) is the one of the file datasets.

Videos the packing could not read (metadata 'failed_videos') are dropped like missing files
and reported as missing, `pack:<split>/<video id>`.
"""
import functools
import json
import math
import os
from typing import NamedTuple

from halluc_jax.data import annotations
from halluc_jax.data import video

PREFIX = 'tfds:'


class PackedVideo(NamedTuple):
  """Where one video of a pack lies; stands for a file path in a VideoRecord."""
  data_dir: str
  name: str
  split: str
  index: int
  video_id: str

  def __str__(self):
    return f'{PREFIX}{self.name}/{self.split}/{self.video_id}'

  def load(self):
    """The video as a `video.EncodedVideo` (its container bytes, decoded from memory)."""
    example = data_source(self.data_dir, self.name, self.split)[self.index]
    got = example['video_id'].decode()
    if got != self.video_id:  # the table and the files disagree: a different pack's files
      raise video.VideoReadError(f"{self}: example {self.index} is '{got}'; the pack's "
                                 'metadata.json does not describe its files (repack it).')
    return video.EncodedVideo(str(self), bytes(example['video']))


@functools.lru_cache(maxsize=16)
def data_source(data_dir, name, split):
  """`tfds.data_source` of one split, opened once per process (and grain worker)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.data_source(name, data_dir=data_dir or None, split=split)


def pack_folder(source, data_dir):
  """<data_dir>/<name> of config.data.source = 'tfds:<name>' (data_dir '' = TFDS's default)."""
  name = source[len(PREFIX):]
  if not name:
    raise ValueError("config.data.source='tfds:' names no pack; expected 'tfds:<name>'.")
  data_dir = os.path.expanduser(data_dir or os.path.join('~', 'tensorflow_datasets'))
  return os.path.join(data_dir, name)


def metadata(folder):
  """The metadata.json of the newest version of the pack in `folder` (<data_dir>/<name>)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"No TFDS pack in {folder} (config.data.source='tfds:<name>', "
                            'config.data.tfds_data_dir); make it with `python -m '
                            'halluc_jax.tools.pack_tfds`.')
  versions = sorted((v for v in os.listdir(folder) if v[:1].isdigit()),
                    key=lambda v: tuple(int(x) for x in v.split('.') if x.isdigit()))
  if not versions:
    raise FileNotFoundError(f'{folder}: no finished version of the pack (interrupted packing?).')
  with open(os.path.join(folder, versions[-1], 'metadata.json')) as f:
    return json.load(f)


def split_names(folder, options):
  del options
  return list(metadata(folder)['splits'])


def read(folder, root, split, options):
  """Annotations of one split of the pack in `folder` (<data_dir>/<name>; root unused)."""
  del root
  meta = metadata(folder)
  data_dir, name = os.path.split(folder)
  if split not in meta['splits']:
    raise ValueError(f"TFDS pack '{name}' has no split {split!r}; it has "
                     f"{sorted(meta['splits'])}.")
  table = meta['splits'][split]
  failed = (meta.get('failed_videos') or {}).get(split, {})
  multi_label = bool(dict(options).get('multi_label', False))
  records, missing = [], []
  for i, video_id in enumerate(table['video_id']):
    if video_id in failed:
      missing.append(f'pack:{split}/{video_id}')
      continue
    label = table['label'][i]
    records.append(annotations.VideoRecord(
        video_id, PackedVideo(data_dir, name, split, i, video_id),
        tuple(label) if multi_label else int(label[0]), split,
        _bound(table['start_s'][i]), _bound(table['end_s'][i])))
  return annotations.Annotations(records, list(meta['class_names']), missing)


def _bound(value):
  return None if value is None or math.isnan(value) else float(value)
