"""Annotation CSVs: both layouts, classes, multi-label, missing files, bad paths."""
import logging
import os

import pytest

from halluc_jax.data import annotations


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'wb').close()


def _write(path, text):
  with open(path, 'w') as f:
    f.write(text)


def _kinetics(tmp_path, classes=None):
  rows = [('b label', 'vid1', 10, 20, 'train'), ('a label', 'vid2', 0, 10, 'train'),
          ('b label', 'vid3', 5, 15, 'val'), ('c, quoted', 'vid4', 1, 11, 'train')]
  text = 'label,youtube_id,time_start,time_end,split\n' + ''.join(
      f'"{l}",{v},{s},{e},{sp}\n' for l, v, s, e, sp in rows)
  _write(tmp_path / 'ann.csv', text)
  if classes:
    _write(tmp_path / 'classes.txt', '\n'.join(classes) + '\n')
  for _, v, s, e, sp in rows:
    _touch(tmp_path / sp / f'{v}_{s:06d}_{e:06d}.mp4')
  return str(tmp_path / 'ann.csv')


def test_kinetics_layout_sorted_classes(tmp_path):
  csv_path = _kinetics(tmp_path)
  recs = annotations.load_annotations(csv_path, str(tmp_path), 'train')
  assert [r.video_id for r in recs] == ['vid1_000010_000020', 'vid2_000000_000010',
                                        'vid4_000001_000011']
  # Sorted unique names over ALL splits: a label, b label, c, quoted.
  assert [r.label for r in recs] == [1, 0, 2]
  assert recs[0].path == os.path.join(str(tmp_path), 'train', 'vid1_000010_000020.mp4')
  assert all(r.split == 'train' for r in recs)
  val = annotations.load_annotations(csv_path, str(tmp_path), 'val')
  assert [(r.video_id, r.label) for r in val] == [('vid3_000005_000015', 1)]


def test_classes_file_sets_indices(tmp_path):
  csv_path = _kinetics(tmp_path, classes=['c, quoted', 'b label', 'a label', 'unused'])
  result = annotations.read_annotations(csv_path, str(tmp_path), 'train')
  assert result.class_names == ['c, quoted', 'b label', 'a label', 'unused']
  assert [r.label for r in result.records] == [1, 2, 0]


def test_generic_layout_with_and_without_split(tmp_path):
  _write(tmp_path / 'list.csv', 'path,label,split\nclips/x.avi,run,train\nclips/y.mp4,jump,test\n')
  _touch(tmp_path / 'clips' / 'x.avi')
  _touch(tmp_path / 'clips' / 'y.mp4')
  recs = annotations.load_annotations(str(tmp_path / 'list.csv'), str(tmp_path), 'test')
  assert recs == [annotations.VideoRecord('clips/y', str(tmp_path / 'clips' / 'y.mp4'), 0, 'test')]
  # No split column: every row is in every split.
  _write(tmp_path / 'all.csv', 'label,path\nrun,clips/x.avi\njump,clips/y.mp4\n')
  recs = annotations.load_annotations(str(tmp_path / 'all.csv'), str(tmp_path), 'anything')
  assert [(r.video_id, r.label) for r in recs] == [('clips/x', 1), ('clips/y', 0)]


def test_multi_label(tmp_path):
  _write(tmp_path / 'ml.csv', 'path,label\na.mp4,sit|drink\nb.mp4,stand\n')
  _write(tmp_path / 'classes.txt', 'drink\nsit\nstand\n')
  _touch(tmp_path / 'a.mp4')
  _touch(tmp_path / 'b.mp4')
  recs = annotations.load_annotations(str(tmp_path / 'ml.csv'), str(tmp_path), 'x',
                                      multi_label=True)
  assert [r.label for r in recs] == [(1, 0), (2,)]
  with pytest.raises(ValueError, match='line 2.*sit\\|drink'):  # single-label: unknown name
    annotations.load_annotations(str(tmp_path / 'ml.csv'), str(tmp_path), 'x')


def test_missing_files_dropped_counted_and_reported_once(tmp_path, caplog):
  csv_path = _kinetics(tmp_path)
  os.remove(tmp_path / 'train' / 'vid2_000000_000010.mp4')
  os.remove(tmp_path / 'train' / 'vid4_000001_000011.mp4')
  result = annotations.read_annotations(csv_path, str(tmp_path), 'train')
  assert [r.video_id for r in result.records] == ['vid1_000010_000020']
  assert len(result.missing_paths) == 2
  assert result.missing_paths[0].endswith('vid2_000000_000010.mp4')
  with caplog.at_level(logging.WARNING):
    annotations.load_annotations(csv_path, str(tmp_path), 'train')
    annotations.load_annotations(csv_path, str(tmp_path), 'train')
  warnings = [r.getMessage() for r in caplog.records if 'missing' in r.getMessage()]
  assert len(warnings) == 1
  assert '2 of 3 videos missing' in warnings[0] and 'vid2_000000_000010.mp4' in warnings[0]


def test_errors_name_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.csv'):
    annotations.load_annotations(str(tmp_path / 'nope.csv'), str(tmp_path), 'train')
  csv_path = _kinetics(tmp_path)
  with pytest.raises(FileNotFoundError, match='no_root'):
    annotations.load_annotations(csv_path, str(tmp_path / 'no_root'), 'train')
  with pytest.raises(ValueError, match="split 'test'.*'train', 'val'"):
    annotations.load_annotations(csv_path, str(tmp_path), 'test')
  # Root exists but holds none of the videos.
  os.makedirs(tmp_path / 'elsewhere')
  with pytest.raises(ValueError, match='all 3 videos.*elsewhere'):
    annotations.load_annotations(csv_path, str(tmp_path / 'elsewhere'), 'train')
  _write(tmp_path / 'empty.csv', 'path,label\n')
  with pytest.raises(ValueError, match='empty.csv: no rows'):
    annotations.load_annotations(str(tmp_path / 'empty.csv'), str(tmp_path), 'train')
  _write(tmp_path / 'bad.csv', 'file,class\na.mp4,x\n')
  with pytest.raises(ValueError, match='bad.csv.*neither'):
    annotations.load_annotations(str(tmp_path / 'bad.csv'), str(tmp_path), 'train')
