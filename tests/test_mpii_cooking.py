"""MPII Cooking reader (halluc_jax/data/datasets/mpii_cooking.py): the release's ground-truth CSV
written by hand in its layout, both protocols, bad rows named by line, and a user-style run that
trains a few steps on real fixture videos and evaluates with the dataset's metric (mAP)."""
import fractions
import os

import numpy as np
import pytest

from halluc_jax import train
from halluc_jax.data import datasets
from halluc_jax.data.datasets import common
from halluc_jax.data.datasets import mpii_cooking
import configs_for_tests
import video_fixtures

pytestmark = pytest.mark.usefixtures('fast_compilation')

OPTIONS = {'split_index': 1, 'protocol': 'cv7', 'label_field': 'verb', 'val_participants': (),
           'multi_label': True}
HEADER = 'Subject,File,Start,End,Category,Name\n'
# Subject 8 is fold 1's test subject, 10 fold 2's; 9 always trains. Category 1 is background.
ROWS = ('s08,s08-d01-cam-002,1,30,1,Background activity\n'
        's08,s08-d01-cam-002,31,60,17,cut apart\n'
        '9,s09-d02-cam-002,1,29,5,"lid: put on"\n'
        '9,s09-d02-cam-002,30,60,17,cut apart\n'
        's10,s10-d03-cam-002,11,50,5,"lid: put on"\n')


def _write(path, text):
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def _release(tmp_path, rows=ROWS, header=True, videos=False):
  ann, root = tmp_path / 'annotations', tmp_path / 'videos'
  _write(ann / mpii_cooking.GROUND_TRUTH, (HEADER if header else '') + rows)
  _write(ann / 'experimentalSetup' / 'sequencesTrainAttr.txt', 's08-d01\ns09-d02 extra\n')
  _write(ann / 'experimentalSetup' / 'sequencesVal.txt', 's10-d03\n')
  _write(ann / 'experimentalSetup' / 'sequencesTest.txt', 's10-d03\n')
  os.makedirs(root, exist_ok=True)
  for name in ('s08-d01-cam-002', 's09-d02-cam-002', 's10-d03-cam-002'):
    path = root / f'{name}.mp4'
    if videos:  # 60 frames at the recordings' 29.4 fps, so segment times land on frames
      video_fixtures.write_video(str(path), codec='libx264', num_frames=60,
                                 fps=fractions.Fraction(147, 5),
                                 height=48, width=64)
    else:
      _write(path, '')
  return str(ann), str(root)


def _read(ann, root, split, **options):
  return mpii_cooking.read(ann, root, split, dict(OPTIONS, **options))


@pytest.mark.parametrize('header', [True, False])
def test_cv7_folds_classes_and_segment_times(tmp_path, header):
  ann, root = _release(tmp_path, header=header)
  train_ = _read(ann, root, 'train')
  # Background dropped; classes by category id; fold 1 holds out subject 8.
  assert train_.class_names == ['lid: put on', 'cut apart']
  assert [(r.video_id, r.label) for r in train_.records] == [
      ('s09-d02-cam-002/1-29', (0,)), ('s09-d02-cam-002/30-60', (1,)),
      ('s10-d03-cam-002/11-50', (0,))]
  first = train_.records[0]
  assert first.path == os.path.join(root, 's09-d02-cam-002.mp4')  # .avi absent: the .mp4
  # 1-based inclusive frames -> [start, end) seconds at 29.4 fps.
  assert first.start_s == 0.0 and first.end_s == pytest.approx(29 / 29.4)
  test = _read(ann, root, 'test')
  assert [(r.video_id, r.label, r.split) for r in test.records] == [
      ('s08-d01-cam-002/31-60', (1,), 'test')]
  assert [r.video_id for r in _read(ann, root, 'test', split_index=2).records] == [
      's10-d03-cam-002/11-50']
  single = _read(ann, root, 'test', multi_label=False)
  assert single.records[0].label == 1


def test_official_protocol_reads_the_sequence_lists(tmp_path):
  ann, root = _release(tmp_path)
  names = mpii_cooking.split_names(ann, dict(OPTIONS, protocol='official'))
  assert names == ['train', 'val', 'test']
  train_ = _read(ann, root, 'train', protocol='official')
  assert [r.video_id for r in train_.records] == [
      's08-d01-cam-002/31-60', 's09-d02-cam-002/1-29', 's09-d02-cam-002/30-60']
  assert [r.video_id for r in _read(ann, root, 'val', protocol='official').records] == [
      's10-d03-cam-002/11-50']


def test_bad_input_names_the_problem(tmp_path):
  ann, root = _release(tmp_path)
  with pytest.raises(ValueError, match="protocol=''"):
    _read(ann, root, 'train', protocol='')
  with pytest.raises(ValueError, match='folds 1..7'):
    _read(ann, root, 'train', split_index=8)
  with pytest.raises(ValueError, match="unknown split 'val'"):
    _read(ann, root, 'val')
  ann, root = _release(tmp_path / 'b', rows=ROWS + 's09,s09-d02-cam-002,40,20,5,x\n')
  with pytest.raises(common.FormatError, match='line 7: segment frames 40..20'):
    _read(ann, root, 'train')
  ann, root = _release(tmp_path / 'c', rows=ROWS + 'q9,s09-d02-cam-002,1,2,5,x\n')
  with pytest.raises(common.FormatError, match="line 7: subject 'q9'"):
    _read(ann, root, 'train')
  ann, root = _release(tmp_path / 'd')
  os.remove(os.path.join(ann, 'experimentalSetup', 'sequencesTest.txt'))
  with pytest.raises(FileNotFoundError, match='sequencesTest.txt'):
    _read(ann, root, 'test', protocol='official')


def test_config_is_the_registered_format():
  config = configs_for_tests.load('mpii_cooking', None)
  assert config.data.format in datasets.READERS
  assert (config.data.protocol, config.data.num_classes) == ('cv7', 64)
  assert config.data.multi_label and config.loss.multi_label


def test_user_style_run_trains_and_reports_map(tmp_path):
  """configs/mpii_cooking.py on a fixture release: a few steps, then mAP on fold 1's test."""
  ann, root = _release(tmp_path, videos=True)
  config = configs_for_tests.load('mpii_cooking', 'tiny', {
      'data.annotations': ann, 'data.root': root, 'data.aux_dir': '', 'data.num_classes': 2,
      'data.num_workers': 0, 'model.streams.dims': {}})
  out = train.train_and_evaluate(config, str(tmp_path / 'wd'))
  result = out['eval']
  assert result['multi_label'] and result['num_videos'] == 1
  assert 0.0 <= result['mAP'] <= 1.0 and np.isfinite(out['train']['loss'])
