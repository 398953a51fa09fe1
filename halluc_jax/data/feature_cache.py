"""Cached backbone features: X(rgb) of every clip, written once, read instead of the videos.

With a frozen backbone (`optim.backbone_lr_mult = 0`, the large-scale protocol of
docs/method.md §2.6) every step recomputes the same backbone forward. `python -m
halluc_jax.tools.cache_features` runs it once per clip and writes the features here; a run with
`config.data.feature_cache = DIR` then trains and evaluates the streams, HAF and PredNet on them
at feature speed (docs/method.md, 'Frozen backbone and cached features').

Layout of DIR:
  manifest.json                 feature shape and dtype, splits -> shard files and record counts,
                                train views per video, and the config keys the features depend
                                on (`fingerprint`): a run whose keys differ is refused
  <split>-00000-of-0000N.array_record   one record per clip (msgpack): features, video_index
                                (row of the split's record list), view (train: the pass;
                                eval: clip * crops + crop), label

Train records are `views` augmented clips of each video (the train pipeline's own random crops,
flips, ...; drawn once, so a cached run sees `views` fixed views per video instead of a new
crop every epoch). Eval records are the eval pipeline's deterministic views.
"""
import json
import os

import numpy as np
from flax import serialization

MANIFEST = 'manifest.json'
FORMAT = 'halluc_jax.feature_cache/1'
# Config keys the cached features depend on (a change means other features). The backbone's
# weights (the writer's init_from) are recorded in the manifest, not compared: a run on the
# cache builds no backbone, and its own init_from may load other groups (stage 2).
FINGERPRINT_KEYS = (('model', 'backbone'), ('model', 'dtype'),
                    ('data', 'num_frames'), ('data', 'frame_stride'), ('data', 'sampling'),
                    ('data', 'crop_size'), ('data', 'resize_short'), ('data', 'train_crop_area'),
                    ('data', 'train_aspect_ratio'), ('data', 'flip'), ('data', 'mean'),
                    ('data', 'std'), ('data', 'eval_clips'), ('data', 'eval_crops'),
                    ('data', 'annotations'))
# The writer's data.shuffle_seed drew the train views; a run's own seed only orders the records.


def _get(config, path):
  node = config
  for key in path:
    node = node.get(key) if hasattr(node, 'get') else None
    if node is None:
      return None
  return node.to_dict() if hasattr(node, 'to_dict') else node


def fingerprint(config):
  """{'model.backbone': ..., ...}: the FINGERPRINT_KEYS of `config`, JSON-normalised."""
  return json.loads(json.dumps({'.'.join(p): _get(config, p) for p in FINGERPRINT_KEYS},
                               sort_keys=True, default=list))


def shard_name(split, i, n):
  return f'{split}-{i:05d}-of-{n:05d}.array_record'


def encode(features, video_index, view, label):
  return serialization.msgpack_serialize({
      'features': np.asarray(features, np.float32), 'video_index': int(video_index),
      'view': int(view), 'label': np.asarray(label)})


def decode(data):
  rec = serialization.msgpack_restore(data)
  return {'features': np.asarray(rec['features'], np.float32),
          'video_index': np.int32(rec['video_index']), 'view': np.int32(rec['view']),
          'label': np.asarray(rec['label'])}


class Writer:
  """Writes the records of each split, then the manifest (`close`)."""

  def __init__(self, out_dir, config, views, records_per_shard=4096):
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    self._module = array_record_module
    self.out_dir, self.views, self.per_shard = out_dir, int(views), int(records_per_shard)
    self.fingerprint = fingerprint(config)
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
      if name.endswith('.array_record') or name == MANIFEST:
        os.remove(os.path.join(out_dir, name))
    self.splits, self.shape = {}, None

  def write_split(self, split, records):
    """`records`: iterable of (features, video_index, view, label); returns the count."""
    records = list(records)
    if not records:
      raise ValueError(f'No features to cache for split {split!r}.')
    shape = tuple(np.shape(records[0][0]))
    if self.shape is not None and shape != self.shape:
      raise ValueError(f'Split {split!r} has features {shape}, others {self.shape}.')
    self.shape = shape
    n = max(1, -(-len(records) // self.per_shard))
    files = [shard_name(split, i, n) for i in range(n)]
    for i, name in enumerate(files):
      writer = self._module.ArrayRecordWriter(os.path.join(self.out_dir, name), 'group_size:1')
      for rec in records[i * self.per_shard:(i + 1) * self.per_shard]:
        writer.write(encode(*rec))
      writer.close()
    self.splits[split] = {'files': files, 'num_records': len(records),
                          'video_index': [int(r[1]) for r in records]}
    return len(records)

  def close(self, extra=None):
    manifest = {'format': FORMAT, 'feature_shape': list(self.shape), 'dtype': 'float32',
                'views': self.views, 'splits': self.splits, 'fingerprint': self.fingerprint,
                **(extra or {})}
    tmp = os.path.join(self.out_dir, MANIFEST + '.tmp')
    with open(tmp, 'w') as f:
      json.dump(manifest, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(self.out_dir, MANIFEST))
    return manifest


def read_manifest(cache_dir):
  path = os.path.join(cache_dir, MANIFEST)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config.data.feature_cache={cache_dir!r} has no {MANIFEST}: write '
                            'it first (python -m halluc_jax.tools.cache_features).')
  with open(path) as f:
    manifest = json.load(f)
  if manifest.get('format') != FORMAT:
    raise ValueError(f'{path} is not a feature cache ({FORMAT}).')
  return manifest


def check_matches(manifest, config, cache_dir):
  """Raises when `config` would compute other features than the cache holds."""
  want, have = fingerprint(config), manifest['fingerprint']
  diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
  if diff:
    raise ValueError(f'The feature cache {cache_dir} was written for other settings of {diff} '
                     f'(cache: { {k: have.get(k) for k in diff} }; run: '
                     f'{ {k: want.get(k) for k in diff} }); rewrite it or use its settings.')


def feature_shape(cache_dir):
  """The per-clip feature shape, e.g. (D,) for ViViT or (T'', C) for I3D."""
  return tuple(read_manifest(cache_dir)['feature_shape'])


class SplitSource:
  """Random-access records of one cached split (grain source; opened lazily per process)."""

  def __init__(self, cache_dir, split, manifest=None):
    manifest = read_manifest(cache_dir) if manifest is None else manifest
    if split not in manifest['splits']:
      raise ValueError(f'The feature cache {cache_dir} has no split {split!r} '
                       f'(has {sorted(manifest["splits"])}).')
    self._paths = [os.path.join(cache_dir, f) for f in manifest['splits'][split]['files']]
    self._len = int(manifest['splits'][split]['num_records'])
    self._source = None

  def _data(self):
    if self._source is None:
      import grain  # pylint: disable=g-import-not-at-top
      self._source = grain.sources.ArrayRecordDataSource(self._paths)
    return self._source

  def __len__(self):
    return self._len

  def __getitem__(self, index):
    return decode(self._data()[index])

  def __getstate__(self):
    return dict(self.__dict__, _source=None)
