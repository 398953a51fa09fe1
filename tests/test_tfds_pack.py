"""The TFDS packing (data/tfds_builder.py) and reading it back (data/datasets/tfds_pack.py).

Real files throughout: the session's tiny mp4 dataset, packed by TFDS into ArrayRecord shards,
read with `tfds.data_source` inside the grain pipeline, re-encoded with PyAV's x264.
"""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import configs_for_tests
from halluc_jax.data import annotations
from halluc_jax.data import aux_targets
from halluc_jax.data import pipeline
from halluc_jax.data import reencode
from halluc_jax.data import tfds_builder
from halluc_jax.data import video
from halluc_jax.data.datasets import tfds_pack

DIM = 6


def _write_targets(root, out_dir):
  """A real target store for the dataset's videos (random values, one NaN row, one absent)."""
  ids = [r.video_id for s in ('train', 'val')
         for r in annotations.read_annotations(os.path.join(root, 'annotations.csv'), str(root),
                                               s).records]
  rng = np.random.default_rng(0)
  records = [(vid, {'odf_shape': rng.normal(size=DIM).astype(np.float32)}) for vid in ids[1:]]
  records[2][1]['odf_shape'][0] = np.nan
  aux_targets.write_targets(str(out_dir), records, {'streams': {'odf_shape': {'dim': DIM}}})
  return ids


def _config(root, aux_dir='', **overrides):
  base = {'data.root': str(root), 'data.annotations': os.path.join(root, 'annotations.csv'),
          'data.aux_dir': str(aux_dir), 'data.num_workers': 0,
          'data.standardize_targets': False}
  return configs_for_tests.load('default', 'tiny', dict(base, **overrides))


def _packed(config, data_dir, name):
  return _config(config.data.root, config.data.aux_dir, **{
      'data.source': f'tfds:{name}', 'data.tfds_data_dir': str(data_dir)})


@pytest.fixture(scope='module')
def packs(tiny_dataset, tmp_path_factory):
  """The tiny dataset with targets, packed as is ('as_is') and re-encoded at 32 px ('s32')."""
  base = tmp_path_factory.mktemp('packs')
  ids = _write_targets(tiny_dataset, base / 'targets')
  config = _config(tiny_dataset, base / 'targets')
  data_dir = base / 'tfds'
  results = {name: tfds_builder.pack(config, name, str(data_dir), short_side=side)
             for name, side in (('as_is', 0), ('s32', 32))}
  return {'config': config, 'data_dir': data_dir, 'ids': ids, 'results': results}


def _equal_batches(a, b):
  flat_a, flat_b = _flat(a), _flat(b)
  assert flat_a.keys() == flat_b.keys()
  for key in flat_a:
    np.testing.assert_array_equal(flat_a[key], flat_b[key], err_msg=key)


def _flat(batch, prefix=''):
  out = {}
  for k, v in batch.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}/'))
    else:
      out[prefix + k] = np.asarray(v)
  return out


def test_pack_holds_the_files_labels_and_targets(packs, tiny_dataset):
  config, data_dir = packs['config'], packs['data_dir']
  assert packs['results']['as_is']['num_videos'] == {'train': 12, 'val': 12}
  store = aux_targets.AuxTargetStore(config.data.aux_dir)
  for split in ('train', 'val'):
    records = pipeline.load_split(config, split)
    source = tfds_pack.data_source(str(data_dir), 'as_is', split)
    assert len(source) == len(records)
    for i, record in enumerate(records):
      example = source[i]
      assert example['video_id'].decode() == record.video_id
      with open(record.path, 'rb') as f:
        assert example['video'] == f.read()  # 'as is': the very file
      assert example['label'].tolist() == [record.label]
      assert math.isnan(example['start_s']) and example['error'] == b''
      targets, masks, _ = store.lookup(record.video_id, raw=True)
      np.testing.assert_array_equal(example['aux']['odf_shape'], targets['odf_shape'])
      assert example['aux_mask']['odf_shape'] == masks['odf_shape']
  meta = tfds_pack.metadata(os.path.join(data_dir, 'as_is'))
  assert meta['class_names'] == annotations.read_class_names(
      os.path.join(tiny_dataset, 'annotations.csv'))
  assert meta['aux_manifest']['streams']['odf_shape']['dim'] == DIM


def test_training_from_the_pack_sees_the_raw_batches(packs):
  """Same sampling, augmentation and targets: a pack of the files as they are gives the batches
  of the folder, bit for bit, train and eval, and resumes from a saved iterator state."""
  config = packs['config']
  packed = _packed(config, packs['data_dir'], 'as_is')
  raw_it, packed_it = pipeline.make_train_dataset(config), pipeline.make_train_dataset(packed)
  for _ in range(2):
    _equal_batches(next(raw_it), next(packed_it))
  state = packed_it.get_state()
  expected = next(packed_it)
  resumed = pipeline.make_train_dataset(packed)
  resumed.set_state(state)
  _equal_batches(next(resumed), expected)
  _equal_batches(next(iter(pipeline.make_eval_dataset(config))),
                 next(iter(pipeline.make_eval_dataset(packed))))


def test_pack_read_by_grain_worker_processes(packs):
  config = _config(packs['config'].data.root, packs['config'].data.aux_dir,
                   **{'data.num_workers': 1})
  packed = _packed(config, packs['data_dir'], 'as_is')
  packed.data.num_workers = 1
  raw_it, packed_it = pipeline.make_train_dataset(config), pipeline.make_train_dataset(packed)
  try:
    _equal_batches(next(raw_it), next(packed_it))
  finally:
    pipeline.close(raw_it)
    pipeline.close(packed_it)


def test_reencoded_pack_is_the_video_at_the_short_side(packs):
  config = packs['config']
  record = pipeline.load_split(config, 'train')[0]
  packed = pipeline.load_split(_packed(config, packs['data_dir'], 's32'), 'train')[0]
  assert packed.video_id == record.video_id and packed.label == record.label
  encoded = packed.path.load()
  info, source = video.probe(encoded), video.probe(record.path)
  assert min(info.height, info.width) == 32 and info.num_frames == source.num_frames
  assert info.fps == pytest.approx(source.fps)
  indices = np.arange(source.num_frames)
  got = video.read_frames(encoded, indices).astype(np.float32)
  want = video.read_frames(record.path, indices, resize_short=32)
  want = reencode.even_crop(want).astype(np.float32)
  assert got.shape == want.shape
  error = np.abs(got - want).mean()
  assert error < 10.0  # x264 at crf 20 with 16x16 px chroma: a few levels
  # Frame i is frame i of the source: the next source frame is farther away.
  assert error < np.abs(got[:-1] - want[1:]).mean()


def test_reencode_cuts_a_segment(tiny_dataset, tmp_path):
  record = annotations.read_annotations(os.path.join(tiny_dataset, 'annotations.csv'),
                                        str(tiny_dataset), 'train').records[0]
  info = video.probe(record.path)
  segment = record._replace(start_s=2 / info.fps, end_s=9 / info.fps)
  _, example = tfds_builder.make_example(('train', 0, segment), 32, 20, None, '', str(tmp_path))
  cut = video.probe(video.EncodedVideo('cut', example['video']))
  assert cut.num_frames == 7
  assert math.isnan(example['start_s']) and math.isnan(example['end_s'])
  # Stored as is, the segment bounds travel with the whole file.
  assert tfds_builder.packed_row(segment, 0)[2:] == (2 / info.fps, 9 / info.fps)


def test_unreadable_video_is_counted_reported_and_dropped(tiny_dataset, tmp_path):
  root = tmp_path / 'data'
  shutil.copytree(tiny_dataset, root)
  config = _config(root)
  bad = pipeline.load_split(config, 'train')[3]
  with open(bad.path, 'wb') as f:
    f.write(b'not a video' * 100)
  result = tfds_builder.pack(config, 'with_bad', str(tmp_path / 'tfds'), short_side=32)
  assert list(result['failed_videos']['train']) == [bad.video_id]
  assert 'VideoReadError' in result['failed_videos']['train'][bad.video_id]
  assert result['failed_videos']['val'] == {}
  got = pipeline.read_split(_packed(config, tmp_path / 'tfds', 'with_bad'), 'train')
  assert bad.video_id not in [r.video_id for r in got.records] and len(got.records) == 11
  assert got.missing_paths == [f'pack:train/{bad.video_id}']


def test_rerun_after_interruption_reencodes_nothing(packs, monkeypatch):
  config, data_dir = packs['config'], packs['data_dir']
  before = tfds_pack.data_source(str(data_dir), 's32', 'val')[5]['video']
  shutil.move(os.path.join(data_dir, 's32'), os.path.join(data_dir, 's32_done'))
  try:
    def fail(*args, **kwargs):
      raise AssertionError(f're-encoded again: {args}')
    monkeypatch.setattr(reencode, 'reencode', fail)
    tfds_builder.pack(config, 's32', str(data_dir), short_side=32)  # from the re-encode cache
    tfds_pack.data_source.cache_clear()
    assert tfds_pack.data_source(str(data_dir), 's32', 'val')[5]['video'] == before
  finally:
    shutil.rmtree(os.path.join(data_dir, 's32'), ignore_errors=True)
    shutil.move(os.path.join(data_dir, 's32_done'), os.path.join(data_dir, 's32'))
    tfds_pack.data_source.cache_clear()


def test_beam_direct_runner_packs_the_same_files(packs):
  config, data_dir = packs['config'], packs['data_dir']
  tfds_builder.pack(config, 's32_beam', str(data_dir), short_side=32,
                    beam_options=['--runner=DirectRunner', '--direct_num_workers=2',
                                  '--direct_running_mode=multi_processing'])
  for split in ('train', 'val'):
    local = tfds_pack.data_source(str(data_dir), 's32', split)
    beam = tfds_pack.data_source(str(data_dir), 's32_beam', split)
    assert len(beam) == len(local) == 12
    for i in range(len(local)):
      a, b = local[i], beam[i]
      assert a['video_id'] == b['video_id'] and a['video'] == b['video']
      np.testing.assert_array_equal(a['aux']['odf_shape'], b['aux']['odf_shape'])


def test_cli_packs_one_split(tiny_dataset, tmp_path):
  config_file = configs_for_tests.write(tmp_path / 'config.py', overrides={
      'data.root': str(tiny_dataset), 'data.aux_dir': '',
      'data.annotations': os.path.join(tiny_dataset, 'annotations.csv')})
  out = subprocess.run(
      [sys.executable, '-m', 'halluc_jax.tools.pack_tfds', '--config', config_file,
       '--name', 'cli_pack', '--data_dir', str(tmp_path / 'tfds'), '--splits', 'val'],
      capture_output=True, text=True, check=True, cwd=configs_for_tests.REPO)
  summary = json.loads(out.stdout[out.stdout.index('{'):])
  assert summary['num_videos'] == {'val': 12} and summary['failed_videos'] == {'val': 0}
  assert tfds_pack.split_names(str(tmp_path / 'tfds' / 'cli_pack'), ()) == ['val']


def test_bad_sources_say_what_to_do(tiny_dataset, tmp_path):
  with pytest.raises(FileNotFoundError, match='pack_tfds'):
    pipeline.load_split(_config(tiny_dataset, **{'data.source': 'tfds:nothing_here',
                                                 'data.tfds_data_dir': str(tmp_path)}), 'train')
  with pytest.raises(ValueError, match="'tfds:<name>'"):
    pipeline.load_split(_config(tiny_dataset, **{'data.source': 'gs://bucket'}), 'train')
