"""Auxiliary-target store: per-video hallucination targets in ArrayRecord shards.

This module is the contract between extraction (`halluc_jax.targets.extract`, which writes) and the
input pipeline (which joins targets to clips by video id). A target directory holds:

  manifest.json            {"streams": {name: {"dim": int, ...}}, "index": {video_id: int}, ...}
  targets-00000-of-000NN.array_record   one record per video

Each record is a msgpack dict {"video_id": str, "streams": {name: float32[dim]}}; a stream may
be absent from a record (that video has no such target). `manifest["streams"][name]` carries at
least "dim"; extraction adds raw dims, sketch seeds, PN parameters and source versions. The
optional "index" maps a video id to its global record number; without it the store scans once.

Reading never fails on a video without a record: it gets zeros and mask 0 for every stream.
A target holding NaN or inf is masked (mask 0, zeros) and counted, never passed on.

Target standardisation (docs/method.md, "Target standardisation"). `manifest["target_stats"]`
holds per-dimension statistics of the train split's valid targets:

  {"split": "train", "num_videos": int (videos of the split found in the store), "ddof": 0,
   "std_floor": {"relative": 1e-3, "absolute": 1e-8},
   "streams": {name: {"count": int, "mean": [dim floats], "std": [dim floats, floored]}}}

They live in manifest.json itself (dims are K*d, at most a few thousand floats per stream).
Extraction writes them; `train_split_stats` computes them on the fly for an older manifest
without them (`python -m halluc_jax.targets.extract --stats_only` stores them). With
`config.data.standardize_targets` the store hands out z = (y - mean) / std for present targets
(absent ones stay zeros with mask 0), so the loss, and anything else reading batch['aux'], sees
the standardised space; `destandardize` maps back.
"""
import copy
import functools
import json
import logging
import os

import numpy as np
from flax import serialization

MANIFEST = 'manifest.json'
STATS_KEY = 'target_stats'
# std_d is floored at max(STD_REL_FLOOR * (the stream's RMS of std_d), STD_ABS_FLOOR): a
# (near-)constant dimension is then only centred, not amplified to unit variance (its noise
# would weigh as much in the loss as an informative dimension), and an all-constant stream
# never divides by zero. Relative, so it does not depend on the descriptor's units.
STD_REL_FLOOR = 1e-3
STD_ABS_FLOOR = 1e-8
_STATS_CHUNK = 1024  # rows per stream buffered before they are folded into the moments


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
  write_manifest(out_dir, manifest)
  return manifest


def write_manifest(target_dir, manifest):
  """Writes manifest.json atomically (readers never see half a manifest)."""
  tmp = os.path.join(target_dir, MANIFEST + '.tmp')
  with open(tmp, 'w') as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  os.replace(tmp, os.path.join(target_dir, MANIFEST))


def read_manifest(target_dir):
  """The parsed manifest.json of `target_dir` (a fresh copy; the file is read once per version)."""
  path = os.path.join(target_dir, MANIFEST)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No auxiliary-target manifest at {path}; run `python -m '
                            'halluc_jax.targets.extract` first or set config.data.aux_dir to "".')
  stat = os.stat(path)
  return copy.deepcopy(_parsed_json(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed_json(path, mtime_ns, size):  # the file's version is part of the key
  del mtime_ns, size
  with open(path) as f:
    return json.load(f)


# ---------------------------------------------------------------------------------------------
# Train-split statistics and standardisation (pure functions of arrays).
# ---------------------------------------------------------------------------------------------
def standardize(y, mean, std):
  """z = (y - mean) / std, per dimension (broadcast over leading axes); numpy or jax arrays."""
  return (y - mean) / std


def destandardize(z, mean, std):
  """Inverse of `standardize`: y = z * std + mean."""
  return z * std + mean


def _std_floor(std, rel_floor, abs_floor):
  """max(rel_floor * sqrt(mean(std^2)), abs_floor): the floor of `floored_std`."""
  return max(rel_floor * float(np.sqrt(np.mean(std ** 2))), abs_floor)


def varying_coordinates(std, rel_floor=STD_REL_FLOOR, abs_floor=STD_ABS_FLOOR):
  """float32 [D] 1 where a floored std (as stored) is above the floor, 0 at it: the train split's
  target is (near-)constant there, so its z is 0 up to noise (docs/method.md, "Constant target
  coordinates"). Flooring only raises entries, so the floor recomputed from the stored std is
  at least the original one; an entry within 1e-6 of it counts as constant."""
  std = np.asarray(std, np.float64)
  return (std > _std_floor(std, rel_floor, abs_floor) * (1.0 + 1e-6)).astype(np.float32)


def floored_std(std, rel_floor=STD_REL_FLOOR, abs_floor=STD_ABS_FLOOR):
  """std floored at max(rel_floor * sqrt(mean(std^2)), abs_floor); see STD_REL_FLOOR."""
  std = np.asarray(std, np.float64)
  return np.maximum(std, _std_floor(std, rel_floor, abs_floor))


class RunningMoments:
  """Per-dimension count, mean and sum of squared deviations, merged chunk by chunk (float64).

  Chan et al.'s pairwise update: exact up to rounding for any chunking, and it never forms
  sum(y^2) - n mean^2, which cancels badly when the mean is large against the spread.
  """

  def __init__(self, dim):
    self.count = 0
    self.mean = np.zeros((dim,), np.float64)
    self.m2 = np.zeros((dim,), np.float64)

  def update(self, rows):
    rows = np.asarray(rows, np.float64)
    n = rows.shape[0]
    if not n:
      return
    chunk_mean = rows.mean(axis=0)
    chunk_m2 = np.sum((rows - chunk_mean) ** 2, axis=0)
    total = self.count + n
    delta = chunk_mean - self.mean
    self.mean = self.mean + delta * (n / total)
    self.m2 = self.m2 + chunk_m2 + delta ** 2 * (self.count * n / total)
    self.count = total

  def std(self):
    """Population std (ddof 0): the standardised training targets have variance exactly 1."""
    return np.sqrt(self.m2 / max(self.count, 1))


def masked_mean_std(values, mask=None):
  """Per-dimension mean and floored std of the rows that count.

  Args:
    values: float [N, D].
    mask: optional [N]; rows with mask 0 are left out. Rows holding any NaN/inf are always
      left out (the store masks such a target too).

  Returns:
    (mean float64 [D], floored std float64 [D], count); (None, None, 0) when no row counts.
  """
  values = np.asarray(values, np.float64)
  keep = np.all(np.isfinite(values), axis=1)
  if mask is not None:
    keep &= np.asarray(mask).reshape(-1) > 0
  moments = RunningMoments(values.shape[1])
  moments.update(values[keep])
  if not moments.count:
    return None, None, 0
  return moments.mean, floored_std(moments.std()), moments.count


def accumulate_target_stats(rows, dims, split, num_videos):
  """The `target_stats` dict from the targets of one split's videos.

  Args:
    rows: iterable of {stream: float array [dim]}, one per video of the split found in the
      store; a stream absent from a row, or holding NaN/inf, does not count for that video.
    dims: {stream: dim} of every stream the stats cover.
    split: the split's name (recorded, and checked by readers).
    num_videos: how many videos of the split were looked up (recorded).

  Returns:
    {'split', 'num_videos', 'ddof', 'std_floor', 'streams': {name: {'count', 'mean', 'std'}}};
    a stream with no valid target has count 0 and mean/std None.
  """
  moments = {n: RunningMoments(int(d)) for n, d in dims.items()}
  buffers = {n: [] for n in dims}

  def flush(name):
    if buffers[name]:
      moments[name].update(np.stack(buffers[name]))
      buffers[name] = []

  for row in rows:
    for name, value in row.items():
      if name not in moments:
        continue
      value = np.asarray(value, np.float64).reshape(-1)
      if value.shape != (int(dims[name]),):
        raise ValueError(f'Target {name!r} has shape {value.shape}; the manifest says '
                         f'{dims[name]}.')
      if np.all(np.isfinite(value)):
        buffers[name].append(value)
        if len(buffers[name]) >= _STATS_CHUNK:
          flush(name)
  streams = {}
  for name, m in moments.items():
    flush(name)
    if m.count:
      streams[name] = {'count': int(m.count), 'mean': m.mean.tolist(),
                       'std': floored_std(m.std()).tolist()}
    else:
      streams[name] = {'count': 0, 'mean': None, 'std': None}
  return {'split': str(split), 'num_videos': int(num_videos), 'ddof': 0,
          'std_floor': {'relative': STD_REL_FLOOR, 'absolute': STD_ABS_FLOOR},
          'streams': streams}


def compute_store_stats(store, video_ids, split):
  """`accumulate_target_stats` over the (raw) targets `store` holds for `video_ids`.

  Raises:
    ValueError: none of the split's videos has a record in the store.
  """
  video_ids = [str(v) for v in video_ids]
  found = [v for v in video_ids if v in store]
  if not found:
    raise ValueError(f'No auxiliary target in {store.target_dir} for any of the '
                     f'{len(video_ids)} videos of split {split!r}: target statistics need that '
                     'split extracted (config.extract.split).')

  def rows():
    for video_id in found:
      targets, masks, _ = store.lookup(video_id, raw=True)
      yield {k: v for k, v in targets.items() if masks[k] > 0}

  return accumulate_target_stats(rows(), store.dims, split, len(found))


def _split_video_ids(config, split):
  from halluc_jax.data import datasets  # pylint: disable=g-import-not-at-top
  return [r.video_id for r in datasets.read(config.data, split).records]


def stats_match(stats, manifest, split):
  """Whether `stats` are usable: computed on `split` and covering every manifest stream."""
  return (bool(stats) and stats.get('split') == split
          and set(manifest['streams']) <= set(stats.get('streams', {})))


_stats_memo = {}


def train_split_stats(config, target_dir=None):
  """`target_stats` of config.data.train_split for the targets in `target_dir` (aux_dir).

  The manifest's own when they were computed on that split; otherwise they are computed now
  from the store (one pass over the split's records, remembered for this process) with a
  warning, so target folders extracted before the statistics existed keep working.

  Raises:
    ValueError: the split is absent from the annotation CSV or from the target store.
  """
  target_dir = str(target_dir or config.data.aux_dir)
  split = str(config.data.train_split)
  manifest = read_manifest(target_dir)
  stats = manifest.get(STATS_KEY)
  if stats_match(stats, manifest, split):
    return stats
  path = os.path.join(target_dir, MANIFEST)
  key = (os.path.abspath(target_dir), os.path.getmtime(path), split,
         os.path.abspath(str(config.data.annotations)), os.path.abspath(str(config.data.root)))
  if key not in _stats_memo:
    logging.warning('%s has no target statistics for split %r; computing them now (store them '
                    'with `python -m halluc_jax.targets.extract --stats_only --config ...`).', path, split)
    _stats_memo[key] = compute_store_stats(AuxTargetStore(target_dir),
                                           _split_video_ids(config, split), split)
  return _stats_memo[key]


def store_train_stats(config, target_dir=None):
  """Computes the train split's statistics for an existing target folder and writes them into
  its manifest.json (what `python -m halluc_jax.targets.extract --stats_only` runs). Returns them."""
  target_dir = str(target_dir or config.extract.get('out_dir', '') or config.data.aux_dir)
  split = str(config.data.train_split)
  stats = compute_store_stats(AuxTargetStore(target_dir), _split_video_ids(config, split), split)
  manifest = read_manifest(target_dir)
  manifest[STATS_KEY] = stats
  write_manifest(target_dir, manifest)
  return stats


class TargetStandardizer:
  """Per-stream float32 mean and std of a `target_stats` dict; maps targets to z and back.

  Attributes:
    split: the split the statistics come from.
    mean, std: {stream: float32 [dim]}.
    varies: {stream: float32 [dim]}, 0 where the train split's target is constant
      (`varying_coordinates`).
  """

  def __init__(self, stats, streams=None):
    """Args: stats: a `target_stats` dict; streams: names it must cover (default: all)."""
    self.split = stats.get('split')
    names = list(stats['streams']) if streams is None else list(streams)
    missing = [n for n in names if n not in stats['streams']]
    empty = [n for n in names if n in stats['streams'] and not stats['streams'][n]['count']]
    if missing or empty:
      raise ValueError(f'Cannot standardise targets with the statistics of split '
                       f'{self.split!r}: streams {missing} have none and {empty} have no valid '
                       'target there. Extract that split for them, or set '
                       'config.data.standardize_targets=False.')
    self.mean = {n: np.asarray(stats['streams'][n]['mean'], np.float32) for n in names}
    self.std = {n: np.asarray(stats['streams'][n]['std'], np.float32) for n in names}
    floor = stats.get('std_floor', {})
    self.varies = {n: varying_coordinates(stats['streams'][n]['std'],
                                          floor.get('relative', STD_REL_FLOOR),
                                          floor.get('absolute', STD_ABS_FLOOR)) for n in names}

  def standardize(self, name, y):
    return standardize(y, self.mean[name], self.std[name])

  def destandardize(self, name, z):
    return destandardize(z, self.mean[name], self.std[name])


def standardize_enabled(config):
  """config.data.standardize_targets with targets configured. A config without the key (a
  workdir trained before it existed) was trained on raw targets: False."""
  data = config.data
  return bool(data.get('aux_dir', '')) and bool(data.get('standardize_targets', False))


def standardizer_for_config(config):
  """The TargetStandardizer of config's train split, or None without targets configured."""
  if not config.data.get('aux_dir', ''):
    return None
  return TargetStandardizer(train_split_stats(config))


def store_for_config(config, streams=None):
  """The AuxTargetStore of config.data.aux_dir over `streams` (names; None = all), standardising
  when `standardize_enabled`; None without aux_dir."""
  aux_dir = config.data.get('aux_dir', '')
  if not aux_dir:
    return None
  return AuxTargetStore(aux_dir, standardizer_for_config(config)
                        if standardize_enabled(config) else None, streams)


class AuxTargetStore:
  """Random access to per-video targets by video id; picklable for grain workers.

  Attributes:
    manifest: the parsed manifest.json.
    dims: dict stream name -> target dimension of the streams it serves, in manifest order.
    standardizer: a TargetStandardizer, or None (targets as stored).
  """

  def __init__(self, target_dir, standardizer=None, streams=None):
    """Args:
      target_dir: the extraction's output folder (manifest.json + ArrayRecord shards).
      standardizer: standardises every target it returns (None: as stored).
      streams: names of the streams to serve (None: every stream of the manifest); a batch
        then carries only these.
    """
    self.target_dir = target_dir
    self.manifest = read_manifest(target_dir)
    self.dims = {k: int(v['dim']) for k, v in self.manifest['streams'].items()}
    if streams is not None:
      unknown = sorted(set(streams) - set(self.dims))
      if unknown:
        raise ValueError(f'Streams {unknown} are not in the manifest of {target_dir} '
                         f'(streams there: {sorted(self.dims)}).')
      self.dims = {k: d for k, d in self.dims.items() if k in set(streams)}
    self.standardizer = standardizer
    if standardizer is not None:
      missing = [n for n in self.dims if n not in standardizer.mean]
      wrong = [n for n in self.dims if n in standardizer.mean
               and standardizer.mean[n].shape != (self.dims[n],)]
      if missing or wrong:
        raise ValueError(f'Target statistics of {target_dir} lack streams {missing} or have '
                         f'the wrong dim for {wrong}; recompute them (python -m '
                         'halluc_jax.targets.extract --stats_only).')
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

  def lookup(self, video_id, raw=False):
    """Targets and presence masks of one video.

    Args:
      video_id: the video's id.
      raw: skip the standardisation (targets as stored).

    Returns:
      (targets, masks, num_bad): targets maps every stream to float32[dim] (zeros where absent
      or non-finite; standardised with the store's standardizer unless `raw`), masks maps
      every stream to float32 1.0 (present) or 0.0, and num_bad counts the streams dropped for
      NaN/inf values.
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
      if self.standardizer is not None and not raw:
        v = self.standardizer.standardize(k, v).astype(np.float32)
      targets[k], masks[k] = v, np.float32(1.0)
    return targets, masks, num_bad
