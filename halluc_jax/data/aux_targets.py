"""Auxiliary-target store: per-video hallucination targets in ArrayRecord shards.

This module is the contract between extraction (`halluc_jax.extract`, which writes) and the
input pipeline (which joins targets to clips by video id). A target directory holds:

  manifest.json            {"streams": {name: {"dim": int, ...}}, "index": {video_id: int}, ...}
  targets-00000-of-000NN.array_record   one record per video

Each record is a msgpack dict {"video_id": str, "streams": {name: float32[dim]}}; a stream may
be absent from a record (that video has no such target). `manifest["streams"][name]` carries at
least "dim"; extraction adds raw dims, sketch seeds, PN parameters and source versions. The
optional "index" maps a video id to its global record number; without it the store scans once.

Reading never fails on a video without a record: it gets zeros and mask 0 for every stream.
A target holding NaN or inf is masked (mask 0, zeros) and counted, never passed on.
"""
import json
import logging
import os

import numpy as np
from flax import serialization

MANIFEST = 'manifest.json'


def _shard_name(i, n):
  return f'targets-{i:05d}-of-{n:05d}.array_record'


def encode_record(video_id, streams):
  """Serialises one video's targets (dict name -> float array) to bytes."""
  return serialization.msgpack_serialize({
      'video_id': str(video_id),
      'streams': {k: np.asarray(v, np.float32) for k, v in streams.items()},
  })


def decode_record(data):
  """Inverse of `encode_record`: returns (video_id, dict name -> float32 array)."""
  rec = serialization.msgpack_restore(data)
  return rec['video_id'], {k: np.asarray(v, np.float32) for k, v in rec['streams'].items()}


def write_targets(out_dir, records, manifest, records_per_shard=1024):
  """Writes (video_id, streams) pairs to ArrayRecord shards plus manifest.json.

  Args:
    out_dir: directory to create or overwrite.
    records: list of (video_id, dict name -> float array).
    manifest: dict with at least {"streams": {name: {"dim": int}}}; an "index" is added.
    records_per_shard: records per ArrayRecord file.

  Returns:
    The manifest as written.
  """
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  for name in os.listdir(out_dir):
    if name.startswith('targets-') and name.endswith('.array_record'):
      os.remove(os.path.join(out_dir, name))
  dims = {k: int(v['dim']) for k, v in manifest['streams'].items()}
  num_shards = max(1, -(-len(records) // records_per_shard))
  index = {}
  for shard in range(num_shards):
    path = os.path.join(out_dir, _shard_name(shard, num_shards))
    writer = array_record_module.ArrayRecordWriter(path, 'group_size:1')
    for video_id, streams in records[shard * records_per_shard:(shard + 1) * records_per_shard]:
      for k, v in streams.items():
        if k not in dims or np.asarray(v).shape != (dims[k],):
          raise ValueError(f'Target {k!r} of video {video_id!r} has shape {np.shape(v)}; '
                           f'manifest says {dims.get(k)}.')
      index[str(video_id)] = len(index)
      writer.write(encode_record(video_id, streams))
    writer.close()
  manifest = dict(manifest, index=index, num_records=len(index))
  tmp = os.path.join(out_dir, MANIFEST + '.tmp')
  with open(tmp, 'w') as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  os.replace(tmp, os.path.join(out_dir, MANIFEST))  # atomic: readers never see half a manifest
  return manifest


def read_manifest(target_dir):
  path = os.path.join(target_dir, MANIFEST)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No auxiliary-target manifest at {path}; run `python -m '
                            'halluc_jax.extract` first or set config.data.aux_dir to "".')
  with open(path) as f:
    return json.load(f)


class AuxTargetStore:
  """Random access to per-video targets by video id; picklable for grain workers.

  Attributes:
    manifest: the parsed manifest.json.
    dims: dict stream name -> target dimension, in manifest order.
  """

  def __init__(self, target_dir):
    self.target_dir = target_dir
    self.manifest = read_manifest(target_dir)
    self.dims = {k: int(v['dim']) for k, v in self.manifest['streams'].items()}
    self._paths = sorted(os.path.join(target_dir, n) for n in os.listdir(target_dir)
                         if n.startswith('targets-') and n.endswith('.array_record'))
    self._source = None
    self._index = self.manifest.get('index')
    if self._index is None:
      self._index = {decode_record(self._data_source()[i])[0]: i
                     for i in range(len(self._data_source()))}

  def _data_source(self):
    if self._source is None:  # opened lazily, so each worker process opens its own files
      import grain  # pylint: disable=g-import-not-at-top
      self._source = grain.sources.ArrayRecordDataSource(self._paths)
    return self._source

  def __getstate__(self):
    state = dict(self.__dict__)
    state['_source'] = None
    return state

  def __contains__(self, video_id):
    return str(video_id) in self._index

  def __len__(self):
    return len(self._index)

  def lookup(self, video_id):
    """Targets and presence masks of one video.

    Returns:
      (targets, masks, num_bad): targets maps every stream to float32[dim] (zeros where absent
      or non-finite), masks maps every stream to float32 1.0 (present) or 0.0, and num_bad
      counts the streams dropped for NaN/inf values.
    """
    targets = {k: np.zeros((d,), np.float32) for k, d in self.dims.items()}
    masks = {k: np.float32(0.0) for k in self.dims}
    i = self._index.get(str(video_id))
    if i is None:
      return targets, masks, 0
    _, streams = decode_record(self._data_source()[i])
    num_bad = 0
    for k, v in streams.items():
      if k not in self.dims:
        continue
      if not np.all(np.isfinite(v)):
        logging.warning('Non-finite target %r for video %r: masked.', k, video_id)
        num_bad += 1
        continue
      targets[k], masks[k] = v, np.float32(1.0)
    return targets, masks, num_bad
