"""The grain input pipeline on real (tiny) videos: batches, resumption, bad files, aux, eval."""
import importlib.util
import os
import shutil

import jax
import numpy as np
import pytest

from halluc_jax.data import annotations
from halluc_jax.data import aux_targets
from halluc_jax.data import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _default_config():
  spec = importlib.util.spec_from_file_location('default_cfg',
                                                os.path.join(ROOT, 'configs', 'default.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _config(root, csv_name='annotations.csv', **data):
  config = _default_config()
  config.data.root = str(root)
  config.data.annotations = os.path.join(str(root), csv_name)
  config.data.aux_dir = ''
  config.data.update(dict(num_frames=4, frame_stride=2, crop_size=32, resize_short=40,
                          batch_size=4, eval_batch_size=4, eval_clips=2, eval_crops=1,
                          num_workers=0, prefetch_buffer=1))
  config.data.update(data)
  return config


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_batches_equal(a, b):
  for x, y in zip(a, b):
    jax.tree.map(np.testing.assert_array_equal, x, y)


def _records(config, split):
  return annotations.load_annotations(config.data.annotations, config.data.root, split)


def test_train_batch_shapes_labels_and_aux_join(tiny_dataset, tmp_path):
  config = _config(tiny_dataset)
  records = _records(config, 'train')
  # Targets for all train videos but the first; odf of one more is NaN (masked, counted).
  rng = np.random.default_rng(0)
  stored = {r.video_id: {'odf': rng.normal(size=6).astype(np.float32),
                         'sdf': rng.normal(size=3).astype(np.float32)} for r in records[1:]}
  stored[records[2].video_id]['odf'][0] = np.nan
  aux_targets.write_targets(str(tmp_path / 'targets'), list(stored.items()),
                            {'streams': {'odf': {'dim': 6}, 'sdf': {'dim': 3}}})
  config.data.aux_dir = str(tmp_path / 'targets')
  config.data.standardize_targets = False  # the join hands out the stored vectors as they are
  it = pipeline.make_train_dataset(config, process_index=0, process_count=1)
  seen = set()
  for batch in _take(it, 3):  # 12 clips = one epoch of the 12 train videos
    assert batch['video'].shape == (4, 4, 32, 32, 3) and batch['video'].dtype == np.float32
    assert batch['label'].dtype == np.int32 and batch['video_index'].dtype == np.int32
    np.testing.assert_array_equal(batch['valid'], np.ones(4, np.float32))
    assert batch['aux']['odf'].shape == (4, 6) and batch['aux_mask']['sdf'].shape == (4,)
    assert batch['aux_bad'].dtype == np.int32
    # Normalised with mean 0.45 / std 0.225: values span roughly [-2, 2.5].
    assert batch['video'].min() >= -2.01 and batch['video'].max() <= 2.45
    assert batch['video'].std() > 0.1
    for i, row in enumerate(batch['video_index']):
      record = records[row]
      seen.add(int(row))
      assert batch['label'][i] == record.label
      if record.video_id not in stored:
        assert batch['aux_mask']['odf'][i] == 0 and not batch['aux']['odf'][i].any()
        continue
      np.testing.assert_array_equal(batch['aux']['sdf'][i], stored[record.video_id]['sdf'])
      assert batch['aux_mask']['sdf'][i] == 1
      if record is records[2]:
        assert batch['aux_mask']['odf'][i] == 0 and batch['aux_bad'][i] == 1
      else:
        np.testing.assert_array_equal(batch['aux']['odf'][i], stored[record.video_id]['odf'])
  assert seen == set(range(len(records)))  # shuffled, but one epoch covers every video


@pytest.mark.parametrize('num_workers', [0, 1])
def test_state_round_trip_is_exact(tiny_dataset, num_workers):
  config = _config(tiny_dataset, num_workers=num_workers, batch_size=2)
  it = pipeline.make_train_dataset(config, process_index=0, process_count=1)
  first = _take(it, 2)
  state = it.get_state()
  expected = _take(it, 3)
  if hasattr(it, 'close'):
    it.close()
  fresh = pipeline.make_train_dataset(config, process_index=0, process_count=1)
  fresh.set_state(state)
  _assert_batches_equal(_take(fresh, 3), expected)
  if hasattr(fresh, 'close'):
    fresh.close()
  # Not trivially equal: the batches after the checkpoint differ from those before it.
  assert not np.array_equal(first[0]['video'], expected[0]['video'])
  if num_workers:  # worker processes change where elements are made, not what they are
    config.data.num_workers = 0
    in_process = pipeline.make_train_dataset(config, process_index=0, process_count=1)
    _assert_batches_equal(_take(in_process, 5), first + expected)


def _with_bad_files(tiny_dataset, tmp_path, multi_label=False):
  """A generic-layout CSV: 3 real train videos, random bytes, a text file and an empty file."""
  good = _records(_config(tiny_dataset), 'train')[:3]
  bad_dir = tmp_path / 'bad'
  bad_dir.mkdir()
  (bad_dir / 'corrupt.mp4').write_bytes(np.random.default_rng(0).bytes(20000))
  (bad_dir / 'notes.mp4').write_text('this is not a video\n' * 50)
  (bad_dir / 'empty.mp4').write_bytes(b'')
  lines = ['path,label,split']
  for i, r in enumerate(good):
    name = f'v{i}.mp4'
    shutil.copy(r.path, tmp_path / name)
    lines.append(f'{name},{"walk|run" if multi_label and i % 2 else "walk"},train')
  lines += ['bad/corrupt.mp4,run,train', 'bad/notes.mp4,walk,train', 'bad/empty.mp4,run,train']
  (tmp_path / 'list.csv').write_text('\n'.join(lines) + '\n')
  return _config(tmp_path, 'list.csv', num_classes=2, batch_size=3, eval_batch_size=4,
                 multi_label=multi_label)


def test_bad_files_are_skipped_and_counted(tiny_dataset, tmp_path, caplog):
  config = _with_bad_files(tiny_dataset, tmp_path)
  records = _records(config, 'train')
  bad_rows = {i for i, r in enumerate(records) if '/bad/' in r.path}
  assert len(bad_rows) == 3
  it = pipeline.make_train_dataset(config, process_index=0, process_count=1)
  batches = _take(it, 4)  # two epochs of 6 rows
  rows = np.concatenate([b['video_index'] for b in batches])
  valid = np.concatenate([b['valid'] for b in batches])
  assert sorted(rows.tolist()) == sorted(list(range(6)) * 2)
  np.testing.assert_array_equal(valid, [0.0 if r in bad_rows else 1.0 for r in rows])
  assert int((1 - valid).sum()) == 6  # what the trainer reports as skipped
  for b in batches:
    assert not b['video'][b['valid'] == 0].any()
  assert 'Cannot decode' in caplog.text
  assert all(name in caplog.text for name in ('corrupt.mp4', 'notes.mp4', 'empty.mp4'))
  # Eval too: every view of a bad video is invalid, the rest are valid.
  batches = list(pipeline.make_eval_dataset(config, process_index=0, process_count=1,
                                            split='train'))
  rows = np.concatenate([b['video_index'] for b in batches])
  valid = np.concatenate([b['valid'] for b in batches])
  np.testing.assert_array_equal(valid, [float(r >= 0 and r not in bad_rows) for r in rows])


def test_multi_label_multi_hot(tiny_dataset, tmp_path):
  config = _with_bad_files(tiny_dataset, tmp_path, multi_label=True)
  records = _records(config, 'train')
  batch = next(pipeline.make_train_dataset(config, process_index=0, process_count=1))
  assert batch['label'].shape == (3, 2) and batch['label'].dtype == np.float32
  for i, row in enumerate(batch['video_index']):
    expected = np.zeros(2, np.float32)
    expected[list(annotations.load_annotations(
        config.data.annotations, config.data.root, 'train', multi_label=True)[row].label)] = 1
    np.testing.assert_array_equal(batch['label'][i], expected)
  assert len(records) == 6


def test_eval_covers_every_view_once_with_padding(tiny_dataset):
  config = _config(tiny_dataset, eval_clips=2, eval_crops=3, eval_batch_size=5)
  records = _records(config, 'val')
  batches = list(pipeline.make_eval_dataset(config, process_index=0, process_count=1))
  assert all(b['video'].shape == (5, 4, 32, 32, 3) for b in batches)
  rows = np.concatenate([b['video_index'] for b in batches])
  views = np.concatenate([b['view_index'] for b in batches])
  valid = np.concatenate([b['valid'] for b in batches])
  labels = np.concatenate([b['label'] for b in batches])
  num_views = len(records) * 6
  assert len(rows) == -(-num_views // 5) * 5
  real = valid > 0
  assert real.sum() == num_views and not real[num_views:].any()
  assert (rows[~real] == -1).all() and (views[~real] == -1).all()
  pairs = sorted(zip(rows[real].tolist(), views[real].tolist()))
  assert pairs == [(v, k) for v in range(len(records)) for k in range(6)]
  assert all(labels[i] == records[rows[i]].label for i in np.flatnonzero(real))
  # Views of one clip differ by crop only; a second pass is identical (deterministic).
  video = np.concatenate([b['video'] for b in batches])
  assert not np.array_equal(video[0], video[2])
  _assert_batches_equal(batches, pipeline.make_eval_dataset(config, process_index=0,
                                                            process_count=1))


def test_two_processes_get_disjoint_covering_shards(tiny_dataset):
  config = _config(tiny_dataset, batch_size=4, eval_batch_size=4)
  num_train = len(_records(config, 'train'))
  shards = []
  for p in range(2):
    it = pipeline.make_train_dataset(config, process_index=p, process_count=2)
    epoch = _take(it, num_train // 2 // 2)  # per-process batch 2, shard of num_train / 2
    shards.append({int(i) for b in epoch for i in b['video_index']})
  assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(num_train))
  assert len(shards[0]) == num_train // 2
  num_val = len(_records(config, 'val'))
  evals = [list(pipeline.make_eval_dataset(config, process_index=p, process_count=2))
           for p in range(2)]
  assert len(evals[0]) == len(evals[1])  # every host runs the same number of eval steps
  seen = [{int(i) for b in e for i, ok in zip(b['video_index'], b['valid']) if ok} for e in evals]
  assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(num_val))


def test_config_errors(tiny_dataset, tmp_path):
  with pytest.raises(ValueError, match=r'batch_size=5 .*processes \(2\)'):
    pipeline.make_train_dataset(_config(tiny_dataset, batch_size=5), 0, 2)
  with pytest.raises(FileNotFoundError, match='no_targets'):
    pipeline.make_train_dataset(_config(tiny_dataset, aux_dir=str(tmp_path / 'no_targets')), 0, 1)
  with pytest.raises(ValueError, match='12 classes.*num_classes is 5'):
    pipeline.make_train_dataset(_config(tiny_dataset, num_classes=5), 0, 1)


def test_device_put_batch(tiny_dataset):
  config = _config(tiny_dataset, batch_size=2)
  batch = next(pipeline.make_train_dataset(config, process_index=0, process_count=1))
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ('data',))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  out = pipeline.device_put_batch(batch, sharding)
  assert isinstance(out['video'], jax.Array) and out['video'].sharding == sharding
  jax.tree.map(np.testing.assert_array_equal, out, batch)
