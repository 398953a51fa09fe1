"""A TFDS packing of any dataset the readers know: encoded clips, labels and targets in ArrayRecord.

  python -m halluc_jax.tools.pack_tfds --config configs/hmdb51.py --name hmdb51_s256 \
      --data_dir ~/tensorflow_datasets --short_side 256

`pack` builds a `tensorflow_datasets` `GeneratorBasedBuilder` (ArrayRecord files) named `name`
whose splits are the dataset's splits (config.data's format, data/datasets), one example per
annotated video, in the reader's order (`disable_shuffling`: example i of a split is record i,
so the record table below and the files agree without a pass over the data):

  video     bytes: the encoded container: the source file as is (short_side 0, 'passthrough') or
            re-encoded as H.264 mp4 at that short side (data/reencode.py); a segment of a longer
            video (EPIC-Kitchens, Charades) is cut out when re-encoded, kept whole otherwise
  video_id  text
  label     int64 [n]: the class index, or the class indices of a multi-label video
  start_s, end_s  float32: the segment in the stored video (NaN: its start / its end)
  aux       {stream: float32 [dim]} and aux_mask {stream: float32}: the raw (not standardised)
            auxiliary targets of config.data.aux_dir, when the dataset has them

Its `metadata.json` (TFDS's MetadataDict) holds what the readers would otherwise read from the
annotation files: 'class_names', 'splits' {split: {'video_id', 'label', 'start_s', 'end_s'}},
'packing' (source format and files, short side, crf) and 'aux_manifest' (the target manifest,
with its train-split statistics). Training reads the pack with `config.data.source =
'tfds:<name>'` and `config.data.tfds_data_dir` (data/datasets/tfds_pack.py): the same grain
pipeline, sampling, augmentation and checkpointable state, the clips decoded from memory.

With `beam_options` the examples are made by an Apache Beam pipeline (TFDS's Beam support):
locally on the DirectRunner with worker processes, or on Dataflow / Flink / Spark (README
'TFDS packing'). Either way the output is the same files.
"""
import functools
import hashlib
import json
import logging
import math
import os

import av
import numpy as np

from halluc_jax.data import aux_targets
from halluc_jax.data import datasets
from halluc_jax.data import reencode
from halluc_jax.data import video

# What a bad source file raises while read or re-encoded (as the pipeline's clips.DECODE_ERRORS).
READ_ERRORS = (video.VideoReadError, ValueError, OSError, EOFError, av.error.FFmpegError)

VERSION = '1.0.0'
_NAN = float('nan')


def _tfds():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def label_list(label):
  """A record's label (an index or a tuple of them) as a list of class indices."""
  return [int(v) for v in label] if isinstance(label, (tuple, list)) else [int(label)]


def _seconds(value):
  return _NAN if value is None else float(value)


def packed_row(record, short_side):
  """(video_id, label, start_s, end_s) of a record as stored: a re-encoded segment is cut out,
  so it then starts and ends with the stored video."""
  cut = short_side > 0
  return (str(record.video_id), label_list(record.label),
          _NAN if cut else _seconds(record.start_s), _NAN if cut else _seconds(record.end_s))


def _reencoded(record, short_side, crf, cache_dir):
  """The re-encoded bytes of a record, from `cache_dir` when an earlier (interrupted) run made
  them: TFDS restarts a pack from scratch, the costly re-encodes need not be redone."""
  key = hashlib.sha1(json.dumps([str(record.path), record.start_s, record.end_s, short_side,
                                 crf, reencode.FORMAT_VERSION]).encode()).hexdigest()[:20]
  path = os.path.join(cache_dir, key + '.mp4')
  if os.path.isfile(path):
    with open(path, 'rb') as f:
      return f.read()
  data, _, _ = reencode.reencode(record.path, short_side, record.start_s, record.end_s, crf)
  os.makedirs(cache_dir, exist_ok=True)
  with open(path + f'.{os.getpid()}.tmp', 'wb') as f:
    f.write(data)
  os.replace(path + f'.{os.getpid()}.tmp', path)  # atomic: a killed worker leaves no half file
  return data


def make_example(job, short_side, crf, aux_dims, aux_dir, cache_dir):
  """One (key, example) of the pack; `job` is (split, index, VideoRecord).

  Runs in Beam workers too, so it takes plain values and opens the target store itself.
  """
  split, index, record = job
  error = ''
  try:
    if short_side > 0:
      data = _reencoded(record, short_side, crf, cache_dir)
    else:
      with open(record.path, 'rb') as f:
        data = f.read()
  except READ_ERRORS as e:  # counted and reported (`failed_videos`), never fatal
    data, error = b'', f'{type(e).__name__}: {e}'.splitlines()[0][:500]
    logging.warning('pack: skipping video %s: %s', record.video_id, error)
  video_id, label, start_s, end_s = packed_row(record, short_side)
  example = {'video': data, 'video_id': video_id, 'label': np.asarray(label, np.int64),
             'start_s': np.float32(start_s), 'end_s': np.float32(end_s), 'error': error}
  if aux_dims:
    targets, masks, _ = _target_store(aux_dir).lookup(video_id, raw=True)
    example['aux'] = {n: np.asarray(targets[n], np.float32) for n in aux_dims}
    example['aux_mask'] = {n: np.float32(masks[n]) for n in aux_dims}
  return index, example  # with disable_shuffling, TFDS orders the examples by this key


@functools.lru_cache(maxsize=2)
def _target_store(aux_dir):
  return aux_targets.AuxTargetStore(aux_dir)


def _features(aux_dims):
  tfds = _tfds()
  tensor = tfds.features.Tensor
  features = {'video': tensor(shape=(), dtype=np.object_),
              'video_id': tfds.features.Text(),
              'error': tfds.features.Text(),  # why the video is empty ('' = packed)
              'label': tensor(shape=(None,), dtype=np.int64),
              'start_s': tensor(shape=(), dtype=np.float32),
              'end_s': tensor(shape=(), dtype=np.float32)}
  if aux_dims:
    features['aux'] = tfds.features.FeaturesDict(
        {n: tensor(shape=(int(d),), dtype=np.float32) for n, d in sorted(aux_dims.items())})
    features['aux_mask'] = tfds.features.FeaturesDict(
        {n: tensor(shape=(), dtype=np.float32) for n in sorted(aux_dims)})
  return tfds.features.FeaturesDict(features)


def builder_class(name):
  """A GeneratorBasedBuilder subclass named `name` (not registered: packs are read from their
  files, `tfds.data_source(name, data_dir=...)`, and a process may pack several)."""
  tfds = _tfds()

  class VideoPack(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Pre-resized encoded clips of one annotated video dataset (module docstring)."""
    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): 'Clips, labels, segments and auxiliary targets.'}

    def __init__(self, *, plan=None, **kwargs):
      self._plan = plan  # None when only reading an existing pack
      super().__init__(**kwargs)

    def _info(self):
      plan = self._plan or {}
      return self.dataset_info_from_configs(
          description=__doc__.split('\n', 1)[0],
          features=_features(plan.get('aux_dims')),
          metadata=tfds.core.MetadataDict(plan.get('metadata', {})),
          disable_shuffling=True)  # example i of a split = record i of the metadata table

    def _split_generators(self, dl_manager):
      del dl_manager  # the videos are local files, named by the annotations
      return {split: self._generate_examples(jobs) for split, jobs in self._plan['jobs'].items()}

    def _generate_examples(self, jobs):
      plan = self._plan
      make = functools.partial(make_example, short_side=plan['short_side'], crf=plan['crf'],
                               aux_dims=plan.get('aux_dims'), aux_dir=plan['aux_dir'],
                               cache_dir=plan['cache_dir'])
      if plan['beam']:
        import apache_beam as beam  # pylint: disable=g-import-not-at-top
        return beam.Create(jobs) | beam.Reshuffle() | beam.Map(make)
      return map(make, jobs)

  VideoPack.__name__ = VideoPack.__qualname__ = _class_name(name)
  VideoPack.name = name
  return VideoPack


def _class_name(name):
  return ''.join(part.capitalize() for part in name.split('_')) or 'VideoPack'


def plan_pack(config, splits=None, short_side=0, crf=20):
  """What `pack` writes: the jobs of every split and the metadata table (no video is read).

  Args:
    config: a ConfigDict whose config.data names the dataset (format, annotations, root,
      aux_dir: its targets are packed when the folder exists, '' = none).
    splits: split names (None: every split of the dataset).
    short_side: re-encode at this short side (0: store the files as they are).
    crf: x264 quality of the re-encode.

  Returns:
    {'jobs': {split: [(split, index, VideoRecord)]}, 'metadata': {...}, 'aux_dims', ...}.
  """
  data = config.data
  names = list(splits or datasets.split_names(data))
  jobs, table, class_names, missing = {}, {}, None, {}
  for split in names:
    found = datasets.read(data, split)
    class_names = class_names or list(found.class_names)
    missing[split] = list(found.missing_paths)
    jobs[split] = [(split, i, r) for i, r in enumerate(found.records)]
    rows = [packed_row(r, short_side) for r in found.records]
    table[split] = {key: [row[k] for row in rows]
                    for k, key in enumerate(('video_id', 'label', 'start_s', 'end_s'))}
  if not any(jobs.values()):
    raise ValueError(f'{data.annotations}: no video found in splits {names}.')
  aux_dir = str(data.get('aux_dir', '') or '')
  manifest = aux_targets.read_manifest(aux_dir) if aux_dir and os.path.isdir(aux_dir) else None
  aux_dims = ({n: int(s['dim']) for n, s in manifest['streams'].items()} if manifest else None)
  metadata = {
      'class_names': class_names, 'splits': _json_safe(table),
      'packing': {'format': datasets.format_of(data), 'annotations': str(data.annotations),
                  'root': str(data.root), 'short_side': int(short_side), 'crf': int(crf),
                  'missing_files': missing},
      'aux_manifest': manifest}
  return {'jobs': jobs, 'metadata': metadata, 'aux_dims': aux_dims, 'aux_dir': aux_dir,
          'short_side': int(short_side), 'crf': int(crf)}


def _json_safe(table):
  # NaN is not JSON: a missing segment bound is stored as null.
  return {split: {k: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
                  for k, values in columns.items()} for split, columns in table.items()}


def pack(config, name, data_dir, splits=None, short_side=0, crf=20, beam_options=None):
  """Writes the TFDS pack `name` of config.data's dataset under `data_dir`.

  A video that cannot be read is packed empty with its reason, counted and reported; it never
  stops the packing.

  Args:
    config: as for `plan_pack`.
    name: the dataset name (`config.data.source = 'tfds:<name>'` reads it).
    data_dir: the TFDS data directory (`config.data.tfds_data_dir`).
    splits, short_side, crf: as for `plan_pack`.
    beam_options: None to make the examples in this process, else Apache Beam pipeline
      options (a list of flags such as ['--runner=DirectRunner', '--direct_num_workers=4',
      '--direct_running_mode=multi_processing'], or a PipelineOptions).

  Returns:
    {'dir': the pack's folder, 'num_videos': {split: n}, 'failed_videos': {split: {id: why}}}.
  """
  tfds = _tfds()
  data_dir = os.path.expanduser(data_dir)
  plan = dict(plan_pack(config, splits, short_side, crf), beam=beam_options is not None,
              cache_dir=os.path.join(data_dir, 'downloads', 'halluc_reencoded', name))
  builder = builder_class(name)(plan=plan, data_dir=data_dir, file_format='array_record')
  download_config = None
  if beam_options is not None:
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    if not isinstance(beam_options, pipeline_options.PipelineOptions):
      beam_options = pipeline_options.PipelineOptions(list(beam_options))
    download_config = tfds.download.DownloadConfig(beam_options=beam_options)
  builder.download_and_prepare(download_config=download_config)
  failed = record_failures(name, data_dir, plan['jobs'])
  return {'dir': str(builder.data_dir), 'num_videos': {s: len(j) for s, j in plan['jobs'].items()},
          'failed_videos': failed}


def record_failures(name, data_dir, jobs):
  """{split: {video_id: reason}} of the videos packed empty, stored in the pack's metadata.json
  (its readers drop them as they drop missing files). One read of the pack's records: Beam
  workers cannot hand their failures to this process, the files hold them."""
  tfds = _tfds()
  builder = tfds.builder_from_directory(os.path.join(data_dir, name, VERSION))
  failed = {}
  for split in jobs:
    source = builder.as_data_source(split=split)
    failed[split] = {}
    for i in range(len(source)):
      example = source[i]
      if example['error']:
        failed[split][example['video_id'].decode()] = example['error'].decode()
  path = os.path.join(str(builder.data_dir), 'metadata.json')
  with open(path) as f:
    metadata = json.load(f)
  metadata['failed_videos'] = failed
  with open(path + '.tmp', 'w') as f:
    json.dump(metadata, f)
  os.replace(path + '.tmp', path)
  return failed
