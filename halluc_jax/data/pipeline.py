"""grain input pipelines: annotated videos -> batches of augmented clips.

Training (`make_train_dataset`), per process:

  MapDataset.source([(row, record), ...]) -> shuffle(seed) -> repeat()
  [-> each video R times in its batch: config.augment.repeated_aug]
  -> random_map(decode + sample + augment) -> batch(per_process_batch)
  -> [process_index::process_count] -> to_iter_dataset -> mp_prefetch(num_workers)

The stream of elements is global; global batch k is made of the per-process chunks
k * process_count ... k * process_count + process_count - 1, and a process decodes only its own
chunks (MapDataset is lazy). So the global batches, augmentation included, are the same for any
number of processes: a run on 2 hosts x 4 devices trains on what 1 host x 8 devices does.
Every random choice comes from the per-element generator of `random_map`, which grain derives
from (seed, global element index); so `get_state()/set_state()` resumes exactly, bit for bit,
with or without worker processes.

Evaluation (`make_eval_dataset`): each video of this process's shard is expanded into
eval_clips x eval_crops views (deterministic clip positions and crops), in order, once; the
last batch is padded to full size with valid=0 rows (video_index = view_index = -1), and every
process yields the same number of batches so a multi-host eval step never waits on a peer.

Batch dict (numpy, leading dim = per-process batch B):
  video float32 [B, T, S, S, 3] normalised; label int32 [B] (float32 [B, C] multi-hot when
  multi_label); valid float32 [B] (0 = failed decode or padding, video zeros); video_index int32
  [B] (row in the split's record list); eval only: view_index int32 [B] (clip * crops + crop);
  with config.data.aux_dir: aux {stream: float32 [B, dim]} (standardised with the train
  split's statistics when config.data.standardize_targets), aux_mask {stream: float32 [B]},
  aux_bad int32 [B]; with standardised targets also aux_varies {stream: float32 [B, dim]} (0 =
  a coordinate constant on the train split, `aux_targets.varying_coordinates`).
`train_element_spec` gives the shapes of a global training batch without reading data (the dry
run compiles the train step for it); a test holds it to what `make_train_dataset` yields.

With `config.data.feature_cache` (data/feature_cache.py) both pipelines read the cached backbone
features of each clip instead of decoding videos: 'video' is then [B, *feature_shape], with the
same labels, targets, video_index and (eval) view_index.
"""
import functools
import logging
import math
import os

import grain
import jax
import numpy as np

from halluc_jax.data import annotations
from halluc_jax.data import aux_targets
from halluc_jax.data import clips
from halluc_jax.data import datasets
from halluc_jax.data import feature_cache


def _process_info(process_index, process_count):
  if process_count is None:
    process_count = jax.process_count()
  if process_index is None:
    process_index = jax.process_index()
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} not in [0, {process_count}).')
  return process_index, process_count


def per_process_batch_size(global_batch, process_count, key='config.data.batch_size'):
  """global_batch / process_count, or an error naming the config key."""
  if global_batch <= 0 or global_batch % process_count:
    raise ValueError(f'{key}={global_batch} must be a positive multiple of the number of '
                     f'processes ({process_count}).')
  return global_batch // process_count


def _version(path):
  """(mtime, size) of a file, of each file of a directory (the official annotations of most
  datasets are a folder of lists), None if absent: a cache key that changes when they do."""
  if os.path.isdir(path):
    return tuple((name, _version(os.path.join(path, name))) for name in sorted(os.listdir(path)))
  stat = os.stat(path) if os.path.isfile(path) else None
  return None if stat is None else (stat.st_mtime_ns, stat.st_size)


def read_split(config, split):
  """`annotations.Annotations` of one split in config.data.format (data/datasets); the
  annotations are read once per (file version, split, format settings)."""
  data = config.data
  fmt, source, root = datasets.location_of(data)
  return _read_split(fmt, source, _version(source), root, split, datasets.options_of(data))


@functools.lru_cache(maxsize=32)
def _read_split(fmt, source, version, root, split, options):
  del version  # part of the cache key only
  return datasets.read_split(fmt, source, root, split, options)


def split_names(config):
  """The split names of config.data.annotations (read once per file version)."""
  data = config.data
  fmt, source, _ = datasets.location_of(data)
  return _split_names(fmt, source, _version(source), datasets.options_of(data))


@functools.lru_cache(maxsize=8)
def _split_names(fmt, source, version, options):
  del version
  return datasets.split_names_of(fmt, source, options)


def load_split(config, split):
  """VideoRecords of one split, checked against config.data.num_classes (the CSV is read once
  per run, `read_split`; missing videos are reported each time)."""
  data = config.data
  result = read_split(config, split)
  num_classes = len(result.class_names)
  if num_classes > data.num_classes:
    raise ValueError(f'{data.annotations} has {num_classes} classes but config.data.'
                     f'num_classes is {data.num_classes}.')
  if num_classes < data.num_classes:
    logging.warning('%s names %d classes; config.data.num_classes is %d.', data.annotations,
                    num_classes, data.num_classes)
  annotations.report_missing(result, data.annotations, data.root, split)
  return list(result.records)


def _aux_store(config, streams=None):
  # Standardised targets (config.data.standardize_targets) in train and eval batches alike:
  # batch['aux'] is always in the space the heads regress. Missing dir: clear error.
  return aux_targets.store_for_config(config, None if streams is None else sorted(streams))


_NO_SHARED_MEMORY = 2**62


def _read_options(data):
  return grain.ReadOptions(num_threads=int(data.get('read_threads', 1)),
                           prefetch_buffer_size=int(data.prefetch_buffer))


def _finish(ds, data):
  """MapDataset of batches -> iterator, with worker processes when num_workers > 0.

  Workers send their batches pickled through a pipe unless `config.data.worker_shared_memory`:
  grain's shared-memory hand-off leaves the segments of batches still in flight when the
  iterator stops (end of training, evaluation, errors, SIGTERM) unlinked by nobody, which the
  main job's exit reported as leaked shared_memory objects. A pipe costs one copy per batch
  (about 2 MB at the default size), small next to decoding; the shared memory pays off only
  for batches of hundreds of MB.
  """
  ds = ds.to_iter_dataset(_read_options(data))
  if data.num_workers <= 0:
    return iter(ds)
  _ensure_flags_parsed()
  if not data.get('worker_shared_memory', False):
    # Arrays below min_shm_size bytes are pickled, not copied to shared memory.
    ds = grain.experimental.WithOptionsIterDataset(
        ds, grain.experimental.DatasetOptions(min_shm_size=_NO_SHARED_MEMORY))
  ds = ds.mp_prefetch(grain.MultiprocessingOptions(
      num_workers=int(data.num_workers), per_worker_buffer_size=int(data.prefetch_buffer)))
  return iter(ds)


def _ensure_flags_parsed():
  """grain's process prefetch reads its absl flags; outside `app.run` (tests, notebooks) they
  are unparsed and reading them raises. Their defaults are what such callers want."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _element_seed(seed):
  # Derived as when each process had its own stream ([seed, process 0]), so single-process runs
  # draw the augmentations they always did.
  return int(np.random.SeedSequence([seed, 0]).generate_state(1)[0])


def repeated_augmentation(augment_cfg):
  """R of `config.augment.repeated_aug` (1 = off): each video R times per epoch."""
  r = int((augment_cfg or {}).get('repeated_aug', 1))
  if r < 1:
    raise ValueError(f'config.augment.repeated_aug={r}; expected >= 1 (1 = off).')
  return r


class _RepeatInBatch(grain.MapDataset):
  """Each parent element `times` times inside the same batch of `batch` elements.

  Element j of a batch holds parent element (batch b // times) slot j % (b // times), so a batch
  of 8 with times 2 is [a, b, c, d, a, b, c, d]: the copies (each augmented with its own random
  draw, as random_map seeds by the element's index) share a batch, as VideoMAE's repeated
  sampling does, and the batch rolled by one (the mixup partner) never pairs a clip with
  another view of itself.
  """

  def __init__(self, parent, times, batch):
    super().__init__(parent)
    if batch % times:
      raise ValueError(f'config.augment.repeated_aug={times} must divide the per-process batch '
                       f'({batch}).')
    self._times, self._batch = times, batch
    self._distinct = batch // times

  def __len__(self):
    n = len(self._parent)
    return n if n >= 2**62 else n // self._distinct * self._batch

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    group, slot = divmod(index, self._batch)
    return self._parent[group * self._distinct + slot % self._distinct]

  def __str__(self):
    return f'RepeatInBatch(times={self._times}, batch={self._batch})'


def cache_dir(config):
  """config.data.feature_cache ('' = none): cached backbone features replace the videos."""
  return str(config.data.get('feature_cache', '') or '')


def model_input_shape(config):
  """Shape of one clip as the model reads it: [T, S, S, 3], or the cached feature shape."""
  d = config.data
  if cache_dir(config):
    return feature_cache.feature_shape(cache_dir(config))
  return (int(d.num_frames), int(d.crop_size), int(d.crop_size), 3)


class _CachedLoader:
  """A cached record (or -1: padding) -> a batch element with the split's labels and targets."""

  def __init__(self, source, records, spec, aux_store, feature_shape, with_view):
    self.source, self.spec, self.aux_store = source, spec, aux_store
    self.video_ids = [r.video_id for r in records]
    self.labels = [r.label for r in records]
    self.shape, self.with_view = tuple(feature_shape), with_view

  def __call__(self, index):
    if index < 0:  # eval padding
      out = {'video': np.zeros(self.shape, np.float32),
             'label': clips.label_array(self.labels[0], self.spec) * 0,
             'valid': np.float32(0.0), 'video_index': np.int32(-1),
             **clips.aux_fields(self.aux_store, None)}
      return dict(out, view_index=np.int32(-1)) if self.with_view else out
    rec = self.source[int(index)]
    row = int(rec['video_index'])
    out = {'video': rec['features'], 'label': clips.label_array(self.labels[row], self.spec),
           'valid': np.float32(1.0), 'video_index': np.int32(row),
           **clips.aux_fields(self.aux_store, self.video_ids[row])}
    return dict(out, view_index=np.int32(rec['view'])) if self.with_view else out


def _cached_source(config, split):
  manifest = feature_cache.read_manifest(cache_dir(config))
  feature_cache.check_matches(manifest, config, cache_dir(config))
  return feature_cache.SplitSource(cache_dir(config), split, manifest), manifest


def train_element_spec(config, target_dims, batch_sharding=None):
  """`jax.ShapeDtypeStruct`s of one global training batch, as `make_train_dataset` yields it.

  Args:
    config: the run's ConfigDict.
    target_dims: name -> dim of every stream in the batch's 'aux' (the `streams` given to
      `make_train_dataset`).
    batch_sharding: sharding given to every leaf (None: none).
  """
  d = config.data
  b = int(d.batch_size)
  sds = functools.partial(jax.ShapeDtypeStruct, sharding=batch_sharding)
  batch = {
      'video': sds((b,) + tuple(model_input_shape(config)), np.float32),
      'label': sds((b, d.num_classes), np.float32) if d.multi_label else sds((b,), np.int32),
      'valid': sds((b,), np.float32),
      'video_index': sds((b,), np.int32)}
  if d.get('aux_dir', '') or target_dims:
    names = sorted(target_dims)
    batch['aux'] = {n: sds((b, int(target_dims[n])), np.float32) for n in names}
    batch['aux_mask'] = {n: sds((b,), np.float32) for n in names}
    batch['aux_bad'] = sds((b,), np.int32)
    if aux_targets.standardize_enabled(config):
      batch['aux_varies'] = {n: sds((b, int(target_dims[n])), np.float32) for n in names}
  return batch


def make_train_dataset(config, process_index=None, process_count=None, streams=None):
  """Infinite, shuffled, augmented training batches for this process.

  Args:
    config: the experiment ConfigDict; reads config.data.
    process_index: this process (default jax.process_index()).
    process_count: number of processes (default jax.process_count()).
    streams: names of the target streams the batches carry (None: every stream of the
      manifest); the trainer passes the model's.

  Returns:
    A grain DatasetIterator of batch dicts (see module docstring), with get_state/set_state.
  """
  data = config.data
  process_index, process_count = _process_info(process_index, process_count)
  batch = per_process_batch_size(data.batch_size, process_count)
  records = load_split(config, data.train_split)
  if len(records) < data.batch_size:
    logging.warning('The train split holds %d videos, fewer than the batch of %d; batches '
                    'repeat videos.', len(records), data.batch_size)
  if cache_dir(config):  # cached backbone features instead of decoded clips
    source, manifest = _cached_source(config, data.train_split)
    loader = _CachedLoader(source, records, clips.ClipSpec.from_config(data),
                           _aux_store(config, streams), manifest['feature_shape'], False)
    ds = (grain.MapDataset.range(len(source)).shuffle(seed=int(data.shuffle_seed)).repeat()
          .map(loader).batch(batch, drop_remainder=True))
    return _finish(ds[process_index::process_count], data)
  loader = clips.TrainClipLoader(clips.ClipSpec.from_config(data, config.get('augment')),
                                 _aux_store(config, streams))
  ds = (grain.MapDataset.source(list(enumerate(records)))
        .shuffle(seed=int(data.shuffle_seed))
        .repeat())
  repeats = repeated_augmentation(config.get('augment'))
  if repeats > 1:
    ds = _RepeatInBatch(ds, repeats, batch)
  ds = (ds.random_map(loader, seed=_element_seed(int(data.shuffle_seed)))
        .batch(batch, drop_remainder=True))
  return _finish(ds[process_index::process_count], data)


def eval_view_indices(num_videos, spec, batch, process_index, process_count):
  """(video row, clip, crop) triples of this process, padded with (-1, 0, 0) to full batches.

  Every process gets ceil(ceil(num_videos / process_count) * views / batch) batches.
  """
  per_video = spec.eval_clips * spec.eval_crops
  rows = range(process_index, num_videos, process_count)
  views = [(v, c, k) for v in rows for c in range(spec.eval_clips)
           for k in range(spec.eval_crops)]
  num_batches = math.ceil(math.ceil(num_videos / process_count) * per_video / batch)
  return views + [(-1, 0, 0)] * (num_batches * batch - len(views))


def make_eval_dataset(config, process_index=None, process_count=None, split=None, streams=None):
  """One pass over every view of this process's share of an eval split.

  Args:
    config: the experiment ConfigDict; reads config.data.
    process_index: this process (default jax.process_index()).
    process_count: number of processes (default jax.process_count()).
    split: split name (default config.data.eval_split).
    streams: as for `make_train_dataset`.

  Returns:
    A finite grain DatasetIterator of batch dicts with 'view_index' (see module docstring).
  """
  data = config.data
  process_index, process_count = _process_info(process_index, process_count)
  batch = per_process_batch_size(data.eval_batch_size, process_count,
                                 'config.data.eval_batch_size')
  records = load_split(config, split or data.eval_split)
  spec = clips.ClipSpec.from_config(data)
  if spec.eval_crops not in (1, 3):
    raise ValueError(f'config.data.eval_crops must be 1 or 3, got {spec.eval_crops}.')
  if spec.resize_short < spec.crop_size:
    raise ValueError(f'config.data.resize_short ({spec.resize_short}) must be >= '
                     f'config.data.crop_size ({spec.crop_size}) for eval crops.')
  if cache_dir(config):
    source, manifest = _cached_source(config, split or data.eval_split)
    rows = manifest['splits'][split or data.eval_split]['video_index']
    mine = [i for i, row in enumerate(rows) if row % process_count == process_index]
    per_video = spec.eval_clips * spec.eval_crops
    num_batches = math.ceil(math.ceil(len(records) / process_count) * per_video / batch)
    mine += [-1] * (num_batches * batch - len(mine))
    loader = _CachedLoader(source, records, spec, _aux_store(config, streams),
                           manifest['feature_shape'], True)
    return _finish(grain.MapDataset.source(mine).map(loader).batch(batch, drop_remainder=True),
                   data)
  views = eval_view_indices(len(records), spec, batch, process_index, process_count)
  loader = clips.EvalViewLoader(spec, records, _aux_store(config, streams))
  ds = grain.MapDataset.source(views).map(loader).batch(batch, drop_remainder=True)
  return _finish(ds, data)


def close(iterator):
  """Stops an iterator's grain worker processes now rather than at garbage collection."""
  if hasattr(iterator, 'close'):
    iterator.close()


def device_put_batch(batch, sharding):
  """Process-local numpy batch -> global jax arrays laid out by `sharding` (leading dim)."""
  put = functools.partial(jax.make_array_from_process_local_data, sharding)
  return jax.tree.map(put, batch)
