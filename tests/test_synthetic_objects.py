"""The 'objects' class family of the embedded dataset: kind x motion, and what the detectors see."""
import csv
import json
import os

import numpy as np
import pytest

from halluc_jax.data import synthetic
from halluc_jax.data.synthetic import objects as so
from halluc_jax.data import video as video_io
from halluc_jax.descriptors.sources import LABEL_SPACE
from halluc_jax.descriptors.sources import detectors

DETECTOR_LABEL = {'circle': 'circle', 'triangle': 'triangle', 'square': 'quadrilateral'}


@pytest.fixture(scope='module')
def objects_dataset(tmp_path_factory):
  """36 clips of the objects family at the preset's 96 px (3 per class), train/val/test."""
  root = tmp_path_factory.mktemp('synthetic_objects')
  synthetic.generate(str(root), num_videos=36, size=96, min_frames=16, max_frames=24, seed=3,
                     family='objects', val_fraction=0.34, test_fraction=0.34)
  return root


def test_classes_are_kind_times_motion():
  assert len(so.CLASS_NAMES) == len(so.KINDS) * len(so.MOTIONS) == 12
  assert len(set(so.CLASS_NAMES)) == 12
  assert set(DETECTOR_LABEL) == set(so.SHAPES)  # every shape has its own detector label
  assert set(DETECTOR_LABEL.values()) <= set(LABEL_SPACE)
  assert len(set(DETECTOR_LABEL.values())) == len(so.SHAPES)
  with pytest.raises(KeyError, match='unknown synthetic objects class'):
    so.actor_tracks('red_circle_jump', np.random.default_rng(0), np.linspace(0, 1, 4))


def _hue(rgb):
  """Hue of an RGB colour in units of 60 degrees, in (-1, 5]."""
  r, g, b = (v / 255 for v in rgb)
  hi, lo = max(r, g, b), min(r, g, b)
  if hi == r:
    h = ((g - b) / (hi - lo)) % 6
  elif hi == g:
    h = (b - r) / (hi - lo) + 2
  else:
    h = (r - g) / (hi - lo) + 4
  return h - 6 if h > 5 else h


@pytest.mark.parametrize('name', so.CLASS_NAMES)
def test_actor_kind_and_motion(name):
  kind, motion = name.rsplit('_', 1)
  colour, shape = kind.split('_')
  t = np.linspace(0, 1, 32)
  bystanders = 0
  for i in range(20):
    tracks = so.actor_tracks(name, np.random.default_rng([5, i]), t)
    actor = tracks[0]
    assert actor.role == 'actor' and actor.shape == shape
    lo, hi = so.COLOURS[colour]
    assert lo - 0.01 <= _hue(actor.colour) <= hi + 0.01
    dx, dy = actor.x[-1] - actor.x[0], actor.y[-1] - actor.y[0]
    if motion == 'rise':  # image y grows downwards
      assert dy < -0.2 and abs(dx) < abs(dy)
    else:
      assert dy > 0.2 and abs(dx) < abs(dy)
    for other in tracks[1:]:
      bystanders += 1
      assert other.role == 'bystander' and other.shape in so.SHAPES
      other_hue = _hue(other.colour)
      assert (other.shape, so.COLOURS['red'][0] <= other_hue <= so.COLOURS['red'][1]) != (
          shape, colour == 'red')  # another kind
      assert np.hypot(other.x[-1] - other.x[0], other.y[-1] - other.y[0]) < 0.05  # idle
  assert 1 <= bystanders <= 12  # about 30% of the clips


def test_preset_split_is_stratified_train_val_test():
  preset = synthetic.PRESETS['objects']
  labels, splits = synthetic.labels_and_splits(preset['num_videos'], 0, so.CLASS_NAMES,
                                  preset['val_fraction'], preset['test_fraction'])
  per_class = preset['num_videos'] // 12
  for name in so.CLASS_NAMES:
    got = [s for lab, s in zip(labels, splits) if lab == name]
    assert len(got) == per_class
    assert got.count('val') == got.count('test') == round(0.2 * per_class)
  # Tiny classes still keep a train clip, and every held-out split gets one.
  labels, splits = synthetic.labels_and_splits(36, 0, so.CLASS_NAMES, 0.34, 0.34)
  for name in so.CLASS_NAMES:
    assert sorted(s for lab, s in zip(labels, splits) if lab == name) == ['test', 'train', 'val']


def test_bad_family_and_fractions_are_refused(tmp_path):
  with pytest.raises(ValueError, match='family'):
    synthetic.generate(str(tmp_path), num_videos=12, family='sports')
  with pytest.raises(ValueError, match='fraction'):
    synthetic.generate(str(tmp_path), num_videos=12, val_fraction=0.6, test_fraction=0.5)


def test_written_dataset_layout(objects_dataset):
  classes = (objects_dataset / 'classes.txt').read_text().split()
  assert classes == list(so.CLASS_NAMES)
  with open(objects_dataset / 'annotations.csv') as f:
    rows = list(csv.DictReader(f))
  assert {r['split'] for r in rows} == {'train', 'val', 'test'}
  for r in rows:
    path = synthetic.video_relpath(r['split'], r['youtube_id'], r['time_start'], r['time_end'])
    assert os.path.exists(objects_dataset / path)


def test_shape_detector_labels_the_actor_kind(objects_dataset):
  """The premise of the family: the built-in shape detector names the moving object's kind."""
  det = detectors.build_detector('shape')
  found = right = total = 0
  with open(objects_dataset / 'metadata.jsonl') as f:
    metas = [json.loads(line) for line in f]
  for meta in metas:
    path = str(objects_dataset / meta['path'])
    indices = np.linspace(0, meta['num_frames'] - 1, 8).round().astype(int)
    dets = det(video_io.read_frames(path, indices), indices)
    actor = next(o for o in meta['objects'] if o['role'] == 'actor')
    side = meta['size']
    for t in indices:
      gt = actor['boxes'][t]
      if gt is None:
        continue
      total += 1
      best, best_iou = None, 0.4
      for box, cid in zip(dets.boxes[dets.frame_index == t], dets.class_ids[dets.frame_index == t]):
        x0, y0, x1, y1 = box[1] * side, box[0] * side, box[3] * side, box[2] * side
        inter = (max(0, min(x1, gt[2]) - max(x0, gt[0])) * max(0, min(y1, gt[3]) - max(y0, gt[1])))
        iou = inter / ((x1 - x0) * (y1 - y0) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - inter)
        if iou > best_iou:
          best, best_iou = cid, iou
      if best is not None:
        found += 1
        right += LABEL_SPACE[best] == DETECTOR_LABEL[meta['class'].split('_')[1]]
  assert total > 200
  assert found / total >= 0.75, f'actor found on {found}/{total} frames'
  assert right / found >= 0.6, f'actor kind right on {right}/{found} found boxes'
