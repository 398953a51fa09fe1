"""Dataset readers (halluc_jax/data/datasets): each official format, written by hand here in
exactly its release's layout, gives the expected records; bad input names file and line."""
import json
import os

import numpy as np
import pytest

from halluc_jax import train
from halluc_jax.data import annotations
from halluc_jax.data import clips
from halluc_jax.data import datasets
from halluc_jax.data import pipeline
from halluc_jax.data import sampling
from halluc_jax.data.datasets import common
import configs_for_tests
import video_fixtures

pytestmark = pytest.mark.usefixtures('fast_compilation')

OPTIONS = {'split_index': 1, 'protocol': '', 'label_field': 'verb', 'val_participants': (),
           'multi_label': False}


def _write(path, text, newline=None):
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with open(path, 'w', newline=newline) as f:
    f.write(text)


def _touch(path):
  _write(path, '')


def _opts(**kw):
  return dict(OPTIONS, **kw)


# ---- HMDB-51 ----

def _hmdb(tmp_path):
  ann, root = tmp_path / 'splits', tmp_path / 'videos'
  # The release's lines end in a space; 0 = unused in this split.
  _write(ann / 'wave_test_split1.txt', 'w_a.avi 1 \nw_b.avi 2 \nw_c.avi 0 \n')
  _write(ann / 'brush_hair_test_split1.txt', 'b_a.avi 2 \nb_b.avi 1 \n')
  _write(ann / 'wave_test_split2.txt', 'w_a.avi 2 \n')
  for c, v in (('wave', 'w_a'), ('wave', 'w_b'), ('wave', 'w_c'), ('brush_hair', 'b_a'),
               ('brush_hair', 'b_b')):
    _touch(root / c / f'{v}.avi')
  return str(ann), str(root)


def test_hmdb51_splits_classes_and_paths(tmp_path):
  ann, root = _hmdb(tmp_path)
  train = datasets.READERS['hmdb51'].read(ann, root, 'train', _opts())
  assert train.class_names == ['brush_hair', 'wave']
  assert [(r.video_id, r.label, r.split) for r in train.records] == [
      ('brush_hair/b_b', 0, 'train'), ('wave/w_a', 1, 'train')]
  assert train.records[1].path == os.path.join(root, 'wave', 'w_a.avi')
  test = datasets.READERS['hmdb51'].read(ann, root, 'test', _opts())
  assert [r.video_id for r in test.records] == ['brush_hair/b_a', 'wave/w_b']
  with pytest.raises(FileNotFoundError, match='test_split3'):
    datasets.READERS['hmdb51'].read(ann, root, 'train', _opts(split_index=3))
  with pytest.raises(ValueError, match='split_index=4'):
    datasets.READERS['hmdb51'].read(ann, root, 'train', _opts(split_index=4))


def test_hmdb51_malformed_line_names_file_and_line(tmp_path):
  ann, root = _hmdb(tmp_path)
  _write(os.path.join(ann, 'wave_test_split1.txt'), 'w_a.avi 1\nw_b.avi 3\n')
  with pytest.raises(common.FormatError, match=r'wave_test_split1.txt line 2: .*w_b.avi 3'):
    datasets.READERS['hmdb51'].read(ann, root, 'train', _opts())


# ---- UCF-101 ----

def _ucf(tmp_path):
  ann, root = tmp_path / 'ucfTrainTestlist', tmp_path / 'UCF-101'
  crlf = lambda lines: ''.join(l + '\r\n' for l in lines)  # the release's line ends
  _write(ann / 'classInd.txt', crlf(['1 ApplyEyeMakeup', '2 HandstandPushups']), newline='')
  _write(ann / 'trainlist01.txt', crlf([
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1',
      'HandStandPushups/v_HandStandPushups_g08_c01.avi 2']), newline='')
  _write(ann / 'testlist01.txt', crlf(['HandstandPushups/v_HandStandPushups_g01_c01.avi']),
         newline='')
  for p in ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi',
            'HandStandPushups/v_HandStandPushups_g08_c01.avi',
            'HandstandPushups/v_HandStandPushups_g01_c01.avi'):
    _touch(root / p)
  return str(ann), str(root)


def test_ucf101_lists(tmp_path):
  ann, root = _ucf(tmp_path)
  train = datasets.READERS['ucf101'].read(ann, root, 'train', _opts())
  assert train.class_names == ['ApplyEyeMakeup', 'HandstandPushups']
  assert [(r.video_id, r.label) for r in train.records] == [
      ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01', 0),
      ('HandStandPushups/v_HandStandPushups_g08_c01', 1)]  # folder matched case-insensitively
  test = datasets.READERS['ucf101'].read(ann, root, 'test', _opts())
  assert [(r.video_id, r.label, r.split) for r in test.records] == [
      ('HandstandPushups/v_HandStandPushups_g01_c01', 1, 'test')]
  with pytest.raises(FileNotFoundError, match='trainlist02'):
    datasets.READERS['ucf101'].read(ann, root, 'train', _opts(split_index=2))


def test_ucf101_bad_lines(tmp_path):
  ann, root = _ucf(tmp_path)
  _write(os.path.join(ann, 'trainlist01.txt'), 'ApplyEyeMakeup/a.avi 1\nJuggling/b.avi 2\n')
  with pytest.raises(common.FormatError, match=r'trainlist01.txt line 2: .*Juggling'):
    datasets.READERS['ucf101'].read(ann, root, 'train', _opts())
  _write(os.path.join(ann, 'trainlist01.txt'), 'ApplyEyeMakeup/a.avi 2\n')
  with pytest.raises(common.FormatError, match=r'line 1: index 2 disagrees'):
    datasets.READERS['ucf101'].read(ann, root, 'train', _opts())


# ---- Something-Something V2 ----

def _ssv2(tmp_path, long_names=False):
  ann, root = tmp_path / 'labels', tmp_path / 'videos'
  name = (lambda n: f'something-something-v2-{n}.json') if long_names else (lambda n: f'{n}.json')
  _write(ann / name('labels'), json.dumps({'Holding something next to something': '1',
                                           'Pushing something from left to right': '0'}))
  _write(ann / name('train'), json.dumps([
      {'id': '78687', 'label': 'holding potato next to vicks vaporub bottle',
       'template': 'Holding [something] next to [something]',
       'placeholders': ['potato', 'vicks vaporub bottle']},
      {'id': '42326', 'label': 'pushing a cup from left to right',
       'template': 'Pushing [something] from left to right', 'placeholders': ['a cup']}]))
  _write(ann / name('validation'), json.dumps([
      {'id': '74225', 'label': 'pushing pen from left to right',
       'template': 'Pushing [something] from left to right', 'placeholders': ['pen']}]))
  for vid in ('78687', '42326', '74225'):
    _touch(root / f'{vid}.webm')
  return str(ann), str(root)


@pytest.mark.parametrize('long_names', [False, True])
def test_ssv2_template_is_the_class(tmp_path, long_names):
  ann, root = _ssv2(tmp_path, long_names)
  train = datasets.READERS['ssv2'].read(ann, root, 'train', _opts())
  assert train.class_names == ['Pushing something from left to right',
                               'Holding something next to something']
  assert [(r.video_id, r.label) for r in train.records] == [('78687', 1), ('42326', 0)]
  assert train.records[0].path == os.path.join(root, '78687.webm')
  val = datasets.READERS['ssv2'].read(ann, root, 'validation', _opts())
  assert [(r.video_id, r.label, r.split) for r in val.records] == [('74225', 0, 'validation')]


def test_ssv2_unknown_template(tmp_path):
  ann, root = _ssv2(tmp_path)
  _write(os.path.join(ann, 'validation.json'),
         json.dumps([{'id': '1', 'template': 'Spinning [something]'}]))
  with pytest.raises(common.FormatError, match=r'validation.json: entry 0 .*Spinning'):
    datasets.READERS['ssv2'].read(ann, root, 'validation', _opts())


# ---- Charades ----

_CHARADES_HEADER = ('id,subject,scene,quality,relevance,verified,script,objects,descriptions,'
                    'actions,length\n')


def _charades(tmp_path, train_rows=None):
  ann, root = tmp_path / 'Charades', tmp_path / 'Charades_v1_480'
  rows = train_rows or [
      '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks food, then\nlaughs.",food;stove,'
      '"A person cooks.",c092 11.90 21.20;c147 0.00 12.60;c092 1.0 2.0,24.83\n',
      'N11GT,0KZ7,Stairs,6,7,Yes,A person walks.,stairs,A person walks.,,18.33\n']
  _write(ann / 'Charades_v1_train.csv', _CHARADES_HEADER + ''.join(rows))
  _write(ann / 'Charades_v1_test.csv',
         _CHARADES_HEADER + 'YSKX3,HR43,Bedroom,7,7,Yes,s,bed,d,c000 0.0 3.5,30.0\n')
  _write(ann / 'Charades_v1_classes.txt', 'c000 Holding some clothes\nc092 Cooking\n')
  for vid in ('46GP8', 'N11GT', 'YSKX3'):
    _touch(root / f'{vid}.mp4')
  return str(ann), str(root)


def test_charades_multi_label_over_the_whole_video(tmp_path):
  ann, root = _charades(tmp_path)
  train = datasets.READERS['charades'].read(ann, root, 'train', _opts(multi_label=True))
  assert len(train.class_names) == 157
  assert train.class_names[:2] == ['Holding some clothes', 'c001']
  assert train.class_names[92] == 'Cooking'
  # Sorted unique classes; a video without actions has no positive class.
  assert [(r.video_id, r.label) for r in train.records] == [('46GP8', (92, 147)),
                                                            ('N11GT', ())]
  test = datasets.READERS['charades'].read(ann, root, 'test', _opts(multi_label=True))
  assert [(r.video_id, r.label, r.split) for r in test.records] == [('YSKX3', (0,), 'test')]
  with pytest.raises(ValueError, match='multi_label=True'):
    datasets.READERS['charades'].read(ann, root, 'train', _opts())


def test_charades_bad_action(tmp_path):
  ann, root = _charades(tmp_path, ['A,s,k,1,1,Yes,x,y,z,c092 1.0 2.0,3\n',
                                   'B,s,k,1,1,Yes,x,y,z,c157 1.0 2.0,3\n'])
  with pytest.raises(common.FormatError, match=r'Charades_v1_train.csv line 3: .*c157'):
    datasets.READERS['charades'].read(ann, root, 'train', _opts(multi_label=True))


# ---- EPIC-Kitchens-55 ----

_EPIC_HEADER = ('uid,video_id,participant_id,narration,start_timestamp,stop_timestamp,'
                'start_frame,stop_frame,verb,verb_class,noun,noun_class,all_nouns,'
                'all_noun_classes\n')


def _epic(tmp_path, rows=None):
  ann, root = tmp_path / 'annotations', tmp_path / 'videos' / 'train'
  rows = rows or [
      '0,P01_01,P01,open door,00:00:00.14,00:00:03.37,8,202,open,3,door,8,[\'door\'],[8]\n',
      '1,P01_01,P01,turn on light,00:00:04.37,00:00:06.17,262,370,turn-on,6,light,113,'
      '[\'light\'],[113]\n',
      '2,P02_03,P02,close door,00:01:02.50,00:01:04.00,3750,3840,close,4,door,8,'
      '[\'door\'],[8]\n']
  _write(ann / 'EPIC_train_action_labels.csv', _EPIC_HEADER + ''.join(rows))
  _write(ann / 'EPIC_verb_classes.csv', 'verb_id,class_key,verbs\n3,open,"[\'open\']"\n'
         '4,close,"[\'close\']"\n6,turn-on,"[\'turn-on\']"\n')
  for p in ('P01/P01_01.MP4', 'P02/P02_03.MP4'):
    _touch(root / p)
  return str(ann), str(root)


def test_epic_segments_labels_and_participant_split(tmp_path):
  ann, root = _epic(tmp_path)
  read = datasets.READERS['epic_kitchens55'].read
  train = read(ann, root, 'train', _opts(val_participants=('P02',)))
  assert [(r.video_id, r.label, r.start_s, r.end_s) for r in train.records] == [
      ('0', 3, 0.14, 3.37), ('1', 6, 4.37, 6.17)]
  assert train.records[0].path == os.path.join(root, 'P01', 'P01_01.MP4')
  assert train.class_names[3:7] == ['open', 'close', '5', 'turn-on']
  val = read(ann, root, 'val', _opts(val_participants=('P02',)))
  assert [(r.video_id, r.label, r.start_s, r.end_s) for r in val.records] == [
      ('2', 4, 62.5, 64.0)]
  noun = read(ann, root, 'all', _opts(label_field='noun'))
  assert [r.label for r in noun.records] == [8, 113, 8] and len(noun.class_names) == 114
  action = read(ann, root, 'all', _opts(label_field='action'))
  # Pairs (3, 8), (4, 8), (6, 113), sorted; names 'verb noun' (no noun names file: indices).
  assert [r.label for r in action.records] == [0, 2, 1]
  assert action.class_names == ['open 8', 'close 8', 'turn-on 113']
  with pytest.raises(ValueError, match='val_participants'):
    read(ann, root, 'val', _opts())


def test_epic_bad_timestamp(tmp_path):
  ann, root = _epic(tmp_path, ['0,P01_01,P01,n,00:00:01.00,00:00:02.00,1,2,v,1,n,1,[],[]\n',
                               '1,P01_01,P01,n,1.5,00:00:02.00,1,2,v,1,n,1,[],[]\n'])
  with pytest.raises(common.FormatError, match=r'EPIC_train_action_labels.csv line 3: .*1.5'):
    datasets.READERS['epic_kitchens55'].read(ann, root, 'train', _opts())


# ---- Time windows: segments of long videos ----

def test_frame_window():
  assert sampling.frame_window(100, 25.0) == (0, 100)
  assert sampling.frame_window(100, 25.0, 1.0, 1.4) == (25, 10)
  assert sampling.frame_window(100, 25.0, 3.9, 9.0) == (98, 2)  # clipped to the video
  assert sampling.frame_window(100, 25.0, 10.0, 11.0) == (99, 1)  # past the end: last frame


def _spec(**kw):
  base = dict(num_frames=4, frame_stride=1, sampling='dense', crop_size=32, resize_short=36,
              crop_area=(1.0, 1.0), aspect_ratio=(1.0, 1.0), flip=False, mean=(0.0,) * 3,
              std=(1.0,) * 3, num_classes=2, multi_label=False, eval_clips=2, eval_crops=1)
  return clips.ClipSpec(**dict(base, **kw))


def test_train_and_eval_clips_stay_inside_the_segment(tmp_path):
  path = str(tmp_path / 'long.mkv')
  video_fixtures.write_video(path, codec='ffv1', num_frames=60, fps=25, height=48, width=64)
  rec = annotations.VideoRecord('seg', path, 1, 'train', 1.0, 1.4)  # frames 25..34
  spec = _spec(resize_short=0, crop_size=48)
  for seed in range(5):
    out = clips.TrainClipLoader(spec)((0, rec), np.random.default_rng(seed))
    assert out['valid'] == 1.0
  frames = clips.decode_eval_clips(path, spec, rec.start_s, rec.end_s)
  counters = [[video_fixtures.read_counter(f) for f in clip] for clip in frames]
  assert counters == [[25, 26, 27, 28], [31, 32, 33, 34]]
  # Training draws: every frame inside [25, 35).
  rng = np.random.default_rng(0)
  first, count = sampling.frame_window(60, 25.0, 1.0, 1.4)
  for _ in range(20):
    idx = first + sampling.sample_indices('dense', count, 4, 2, rng)
    assert idx.min() >= 25 and idx.max() < 35


# ---- Through the pipeline and the configs ----

def test_pipeline_reads_the_configured_format(tmp_path):
  ann, root = _hmdb(tmp_path)
  config = configs_for_tests.load('default', 'tiny', {
      'data.format': 'hmdb51', 'data.annotations': ann, 'data.root': root,
      'data.num_classes': 2, 'data.aux_dir': ''})
  assert [r.video_id for r in pipeline.load_split(config, 'test')] == ['brush_hair/b_a',
                                                                       'wave/w_b']
  assert pipeline.split_names(config) == ['train', 'test']
  config.data.format = 'hmdb52'
  with pytest.raises(ValueError, match="format='hmdb52'"):
    pipeline.read_split(config, 'train')


DATASET_CONFIGS = {'hmdb51': 51, 'ucf101': 101, 'ssv2': 174, 'charades': 157,
                   'epic_kitchens55': 125, 'toyota_smarthome': 31, 'yupp': 20, 'mpii_cooking': 64}


@pytest.mark.parametrize('name', sorted(DATASET_CONFIGS))
def test_dataset_config_is_default_plus_known_keys(name):
  config = configs_for_tests.load(name, None).to_dict()
  default = configs_for_tests.load('default', None).to_dict()

  def keys(tree, prefix=''):
    return {k for key, v in tree.items()
            for k in (keys(v, f'{prefix}{key}.') if isinstance(v, dict) and v
                      else {prefix + key})}
  assert keys(config) <= keys(default), keys(config) - keys(default)
  assert config['data']['format'] == name
  assert config['data']['num_classes'] == DATASET_CONFIGS[name]
  assert config['data']['annotations'].startswith(f'data/{name}/')
  assert config['data']['multi_label'] == config['loss']['multi_label'] == (name in ('charades',
                                                                             'mpii_cooking'))
  if name == 'ssv2':
    assert config['data']['flip'] is False


# ---- Toyota Smarthome ----

def _toyota(tmp_path):  # annotations and videos: the one clip folder
  mp4 = tmp_path / 'mp4'
  for name in ('Cook.Cleandishes_p03_r00_v01_c01', 'Cook.Cleandishes_p02_r00_v02_c02',
               'Drink.Frombottle_p04_r01_v01_c05', 'Drink.Frombottle_p10_r00_v03_c03',
               'Walk_p02_r00_v01_c01'):
    _touch(mp4 / f'{name}.mp4')
  return str(mp4)


def test_toyota_cross_subject_and_cross_view(tmp_path):
  mp4 = _toyota(tmp_path)
  read = datasets.READERS['toyota_smarthome'].read
  train = read(mp4, mp4, 'train', _opts(protocol='cs'))  # subjects 3, 4 train
  assert train.class_names == ['Cook.Cleandishes', 'Drink.Frombottle', 'Walk']
  assert [(r.video_id, r.label) for r in train.records] == [
      ('Cook.Cleandishes_p03_r00_v01_c01', 0), ('Drink.Frombottle_p04_r01_v01_c05', 1)]
  test = read(mp4, mp4, 'test', _opts(protocol='cs'))
  assert [r.label for r in test.records] == [0, 1, 2]
  # CV1: camera 1 train, 2 test, 5 val; only Cook is seen by both cameras 1 and 2.
  cv1 = read(mp4, mp4, 'train', _opts(protocol='cv1'))
  assert cv1.class_names == ['Cook.Cleandishes']
  assert [r.video_id for r in cv1.records] == ['Cook.Cleandishes_p03_r00_v01_c01']
  with pytest.raises(ValueError, match="protocol=''"):
    read(mp4, mp4, 'train', _opts())
  _touch(os.path.join(mp4, 'notes_p1.mp4'))
  with pytest.raises(common.FormatError, match='notes_p1.mp4'):
    read(mp4, mp4, 'train', _opts(protocol='cs'))


# ---- YUP++ ----

def _yupp(tmp_path, per_class=12):
  root = tmp_path / 'YUP++'
  for setting in ('camera_stationary', 'camera_moving'):
    for cls in ('Beach', 'Fountain'):
      for i in range(1, per_class + 1):
        _touch(root / setting / cls / f'{cls}_{setting[7:]}_{i:02d}.mp4')
  return str(root), str(root)


def test_yupp_static_and_moving(tmp_path):
  _yupp(tmp_path)
  root = tmp_path / 'YUP++'
  read = datasets.READERS['yupp'].read
  train = read(str(root), str(root), 'train', _opts(protocol='static'))
  assert train.class_names == ['Beach', 'Fountain']
  # ceil(12 / 10) = 2 per class in train, sorted by name.
  assert [(r.video_id, r.label) for r in train.records] == [
      ('Beach/Beach_stationary_01', 0), ('Beach/Beach_stationary_02', 0),
      ('Fountain/Fountain_stationary_01', 1), ('Fountain/Fountain_stationary_02', 1)]
  test = read(str(root), str(root), 'test', _opts(protocol='moving'))
  assert len(test.records) == 20 and test.records[0].video_id == 'Beach/Beach_moving_03'
  with pytest.raises(ValueError, match="protocol='dynamic'"):
    read(str(root), str(root), 'train', _opts(protocol='dynamic'))


# ---- A user-style run per format: a few steps, then the dataset's metric ----

def _toyota_release(tmp_path):
  mp4 = _toyota(tmp_path)
  return mp4, mp4


# format: (fixture release, its class count, config overrides, the metric its config reports)
RUNS = {
    'hmdb51': (_hmdb, 2, {}, 'top1'),
    'ucf101': (_ucf, 2, {}, 'top1'),
    'ssv2': (_ssv2, 2, {}, 'top1'),
    'charades': (_charades, 157, {}, 'mAP'),
    'epic_kitchens55': (_epic, 7, {'data.val_participants': ('P02',)}, 'top1'),
    'toyota_smarthome': (_toyota_release, 3, {}, 'mean_class_accuracy'),
    'yupp': (lambda tmp_path: _yupp(tmp_path, per_class=3), 2, {}, 'top1'),
}


def _real_videos(root):
  """Replaces a fixture release's empty video files by real tiny videos (VP9 for .webm)."""
  for directory, _, names in os.walk(root):
    for name in names:
      path = os.path.join(directory, name)
      if os.path.getsize(path) == 0:
        codec = 'libvpx-vp9' if name.endswith('.webm') else 'libx264'
        video_fixtures.write_video(path, codec=codec, num_frames=12, height=36, width=48)


@pytest.mark.parametrize('name', sorted(RUNS))
def test_dataset_config_trains_on_its_release_and_reports_its_metric(name, tmp_path):
  make, num_classes, overrides, metric = RUNS[name]
  ann, root = make(tmp_path)
  _real_videos(root)
  config = configs_for_tests.load(name, 'tiny', {
      'data.annotations': ann, 'data.root': root, 'data.aux_dir': '',
      'data.num_classes': num_classes, 'model.streams.dims': {}, **overrides})
  out = train.train_and_evaluate(config, str(tmp_path / 'wd'))
  result = out['eval']
  assert out['step'] == config.train.num_train_steps and np.isfinite(out['train']['loss'])
  assert result['split'] == config.data.eval_split
  assert result['num_videos'] == len(pipeline.load_split(config, config.data.eval_split))
  assert 0.0 <= result[metric] <= 1.0
  assert result['multi_label'] == (metric == 'mAP')
