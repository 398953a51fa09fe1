"""The 'synthetic actions' generator: layout, real decodable H.264, determinism, class design."""
import csv
import hashlib
import json
import math
import os
import pathlib
import subprocess
import sys

import av
import numpy as np
import pytest

from halluc_jax.data import synthetic
from halluc_jax.data.synthetic import motion as sc
from halluc_jax.data.synthetic import render as sr

# The parameters of conftest.tiny_dataset, which these tests check and regenerate.
TINY_DATASET = dict(num_videos=24, size=48, min_frames=12, max_frames=24, seed=1)

# Extra CLI flags (name -> value) of `python -m halluc_jax.data.synthetic` whose output must be
# byte-identical across processes; add one dict per generator variant (e.g. a class preset).
DETERMINISM_CASES = [dict(preset='objects'), dict(preset='motion')]


def _rows(root):
  with open(root / 'annotations.csv', newline='') as f:
    return list(csv.DictReader(f))


def _metadata(root):
  with open(root / 'metadata.jsonl') as f:
    return {m['id']: m for m in map(json.loads, f)}


def _clip_path(root, row):
  """Where the Kinetics layout puts a CSV row's clip."""
  return root / row['split'] / f"{row['youtube_id']}_000000_{int(row['time_end']):06d}.mp4"


def _decode(path):
  with av.open(str(path)) as container:
    stream = container.streams.video[0]
    frames = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    return np.stack(frames), stream.average_rate


def _digests(root):
  return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob('*')) if p.is_file()}


def test_csv_layout_and_every_file_decodes(tiny_dataset):
  with open(tiny_dataset / 'annotations.csv') as f:
    assert f.readline().strip() == 'label,youtube_id,time_start,time_end,split'
  rows, meta = _rows(tiny_dataset), _metadata(tiny_dataset)
  assert len(rows) == TINY_DATASET['num_videos'] == len(meta)
  classes = (tiny_dataset / 'classes.txt').read_text().splitlines()
  assert classes == list(sc.CLASS_NAMES) and len(classes) >= 12
  size = TINY_DATASET['size']
  for row in rows:
    m = meta[row['youtube_id']]
    assert row['label'] == m['class'] == classes[m['label']]
    assert row['split'] in ('train', 'val') and row['time_start'] == '0'
    assert int(row['time_end']) == math.ceil(m['num_frames'] / m['fps'])
    path = _clip_path(tiny_dataset, row)
    assert path.is_file() and m['path'] == path.relative_to(tiny_dataset).as_posix()
    frames, rate = _decode(path)
    assert frames.shape == (m['num_frames'], size, size, 3)
    assert rate == m['fps']
    assert TINY_DATASET['min_frames'] <= m['num_frames'] <= TINY_DATASET['max_frames']
    assert frames.std() > 10  # a real scene, not a blank frame
    actors = [o for o in m['objects'] if o['role'] == 'actor']
    assert 1 <= len(actors) <= 2 and sum(o['role'] == 'distractor' for o in m['objects']) >= 2
    for obj in m['objects']:
      assert len(obj['boxes']) == m['num_frames']
      for box in filter(None, obj['boxes']):
        assert 0 <= box[0] < box[2] <= size and 0 <= box[1] < box[3] <= size


def test_splits_stratified_and_rates_lengths_vary(tiny_dataset):
  rows, meta = _rows(tiny_dataset), _metadata(tiny_dataset)
  for split in ('train', 'val'):
    assert {r['label'] for r in rows if r['split'] == split} == set(sc.CLASS_NAMES)
  assert len({m['fps'] for m in meta.values()}) >= 3
  assert len({m['num_frames'] for m in meta.values()}) >= 5
  labels, splits = synthetic.labels_and_splits(360, seed=0)  # the default dataset: ~25% val in every class
  for name in sc.CLASS_NAMES:
    in_class = [s for lab, s in zip(labels, splits) if lab == name]
    assert len(in_class) == 30 and 6 <= in_class.count('val') <= 9


def test_keyframes_every_gop(tiny_dataset):
  meta = _metadata(tiny_dataset)
  row = max(_rows(tiny_dataset), key=lambda r: meta[r['youtube_id']]['num_frames'])
  with av.open(str(_clip_path(tiny_dataset, row))) as c:
    keys = [p.is_keyframe for p in c.demux(video=0) if p.size]
  assert sum(keys) == math.ceil(len(keys) / sr.GOP) and keys[0]


def test_same_seed_same_bytes_any_workers_other_seed_differs(tiny_dataset, tmp_path):
  again = tmp_path / 'again'
  synthetic.generate(str(again), **TINY_DATASET, workers=2)
  assert _digests(again) == _digests(tiny_dataset)
  first = _rows(tiny_dataset)[0]
  np.testing.assert_array_equal(_decode(_clip_path(again, first))[0],
                                _decode(_clip_path(tiny_dataset, first))[0])

  other = tmp_path / 'other'
  synthetic.generate(str(other), **{**TINY_DATASET, 'seed': 2})
  assert _rows(other) != _rows(tiny_dataset)
  other_meta = _metadata(other)
  for m in _metadata(tiny_dataset).values():  # where clip shapes coincide, pixels must not
    o = other_meta[m['id']]
    if (o['num_frames'], o['split']) == (m['num_frames'], m['split']):
      a, b = _decode(tiny_dataset / m['path'])[0], _decode(other / o['path'])[0]
      assert np.abs(a.astype(int) - b).mean() > 5


def _generate_in_subprocess(out, extra_flags, malloc_perturb):
  """Runs the generator CLI in a fresh interpreter; returns the dataset root."""
  cmd = [sys.executable, '-m', 'halluc_jax.data.synthetic', '--out', str(out), '--workers', '1']
  cmd += [f'--{k}={v}' for k, v in {**TINY_DATASET, **extra_flags}.items()]
  # glibc fills new heap blocks with this byte: a reader of uninitialised memory (x264's AVX-512
  # mbtree path did) then gives different bytes per run for sure instead of only by chance.
  env = {**os.environ, 'MALLOC_PERTURB_': str(malloc_perturb)}
  done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300, env=env,
                        cwd=pathlib.Path(__file__).resolve().parents[1])
  assert done.returncode == 0, done.stderr
  return out


@pytest.mark.parametrize('extra_flags', DETERMINISM_CASES,
                         ids=lambda d: ','.join(f'{k}={v}' for k, v in d.items()) or 'default')
def test_same_seed_same_bytes_in_separate_processes(tmp_path, extra_flags):
  first = _digests(_generate_in_subprocess(tmp_path / 'a', extra_flags, malloc_perturb=85))
  second = _digests(_generate_in_subprocess(tmp_path / 'b', extra_flags, malloc_perturb=170))
  assert sum(name.endswith('.mp4') for name in first) == TINY_DATASET['num_videos']
  differ = sorted(name for name in first if first[name] != second.get(name))
  assert set(first) == set(second) and not differ, f'{len(differ)} files differ: {differ[:5]}'


def test_yuv420p_conversion_is_bt601_limited_range():
  ends = np.zeros((1, 2, 4, 3), np.uint8)
  ends[:, :, :2] = 255  # a white and a black 2x2 block: the range end points, no chroma
  assert sr.rgb_to_yuv420p(ends).tolist() == [[[235, 235, 16, 16], [235, 235, 16, 16],
                                               [128, 128, 128, 128]]]
  rng = np.random.default_rng(0)
  rgb = np.stack([sr.background(rng, 48) for _ in range(2)])
  yuv = sr.rgb_to_yuv420p(rgb)
  assert yuv.shape == (2, 72, 48) and yuv.dtype == np.uint8
  for clip, planes in zip(rgb, yuv):  # swscale's conversion up to rounding and chroma siting
    ref = av.VideoFrame.from_ndarray(clip, format='rgb24').reformat(format='yuv420p').to_ndarray()
    assert np.abs(planes.astype(int) - ref).max() <= 2


def _in_memory_clips(per_class, size=32, num_frames=12, seed=7):
  clips, labels = [], []
  for label, name in enumerate(sc.CLASS_NAMES):
    for i in range(per_class):
      rng = np.random.default_rng([seed, label, i])
      clips.append(sr.render_clip(name, rng, size, num_frames)[0])
      labels.append(label)
  return clips, np.array(labels)


def _leave_one_out_nearest_mean(features, labels):
  features = (features - features.mean(0)) / (features.std(0) + 1e-6)
  correct = 0
  for i in range(len(labels)):
    keep = np.arange(len(labels)) != i
    means = np.stack([features[keep & (labels == c)].mean(0) for c in range(labels.max() + 1)])
    correct += np.argmin(((means - features[i]) ** 2).sum(1)) == labels[i]
  return correct / len(labels)


def test_single_frame_statistics_do_not_give_the_class_away():
  clips, labels = _in_memory_clips(per_class=12)
  chance = 1 / len(sc.CLASS_NAMES)
  mean_colour = np.stack([c.reshape(-1, 3).mean(0) for c in clips])
  colour_std = np.stack([c.reshape(-1, 3).std(0) for c in clips])
  middle_frame_4x4 = np.stack([c[len(c) // 2, ::8, ::8].ravel() for c in clips]).astype(float)
  for features in (mean_colour, np.concatenate([mean_colour, colour_std], 1), middle_frame_4x4):
    assert _leave_one_out_nearest_mean(features, labels) < chance + 0.12


@pytest.mark.parametrize('name', sc.CLASS_NAMES)
def test_class_programmes_do_what_they_say_and_are_flip_symmetric(name):
  rightward, n = 0, 60
  t = np.linspace(0, 1, 40)
  for i in range(n):
    tracks = sc.actor_tracks(name, np.random.default_rng([3, i]), t)
    actors = [tr for tr in tracks if tr.role == 'actor']
    assert len(actors) == (1 if name in sc.SINGLE_ACTOR else 2)
    for tr in tracks:
      assert np.all((tr.x >= sc.MARGIN - 1e-9) & (tr.x <= 1 - sc.MARGIN + 1e-9))
      assert np.all((tr.y >= sc.MARGIN - 1e-9) & (tr.y <= 1 - sc.MARGIN + 1e-9))
    a = actors[0]
    rightward += a.x[-1] > a.x[0]
    if len(actors) == 2:
      b = actors[1]
      gap = np.hypot(a.x - b.x, a.y - b.y) - a.radius - b.radius
    if name == 'rise':
      assert a.y[-1] < a.y[0] - 0.15
    elif name == 'fall':
      assert a.y[-1] > a.y[0] + 0.15
    elif name == 'bounce':
      assert np.sum(np.diff(np.sign(np.diff(a.y))) != 0) >= 2  # goes up and down repeatedly
    elif name == 'grow':
      assert a.radius[-1] > 1.8 * a.radius[0]
    elif name == 'shrink':
      assert a.radius[0] > 1.8 * a.radius[-1]
    elif name == 'blink':
      assert np.sum(np.diff(a.visible.astype(int)) != 0) >= 3
    elif name == 'approach':
      assert gap[0] > gap[-1] + 0.1 and gap.min() > 0.03
    elif name == 'separate':
      assert gap[-1] > gap[0] + 0.1 and gap.min() > 0.03
    elif name == 'collide':
      k = np.argmin(gap)
      assert gap[k] < 0.03 and gap[0] > gap[k] + 0.1 and gap[-1] > gap[k] + 0.05
    elif name == 'push':
      assert gap[0] > 0.1 and abs(gap[-1]) < 1e-6
      assert np.hypot(b.x[-1] - b.x[0], b.y[-1] - b.y[0]) > 0.1  # the pushed one moved
    elif name == 'orbit':
      angle = np.unwrap(np.arctan2(b.y - a.y, b.x - a.x))
      assert abs(angle[-1] - angle[0]) > 1.5 * np.pi
    elif name == 'follow':
      assert gap.min() > 0 and np.hypot(b.x[-1] - b.x[0], b.y[-1] - b.y[0]) > 0.15
  if name not in ('grow', 'shrink', 'blink'):  # drift-only classes have tiny x motion either way
    assert 0.2 * n < rightward < 0.8 * n  # left and right motions equally likely


def test_bad_arguments_name_the_argument(tmp_path):
  with pytest.raises(ValueError, match='size=47'):
    synthetic.generate(str(tmp_path), num_videos=12, size=47)
  with pytest.raises(ValueError, match='min_frames=9, max_frames=8'):
    synthetic.generate(str(tmp_path), num_videos=12, min_frames=9, max_frames=8)
  with pytest.raises(ValueError, match='num_videos=5'):
    synthetic.generate(str(tmp_path), num_videos=5)
  with pytest.raises(KeyError, match='jump'):
    sc.actor_tracks('jump', np.random.default_rng(0), np.linspace(0, 1, 4))


def test_cli_writes_dataset_and_rejects_bad_flags(tmp_path):
  cmd = [sys.executable, '-m', 'halluc_jax.data.synthetic', '--out', str(tmp_path / 'd'),
         '--num_videos', '12', '--size', '32', '--min_frames', '4', '--max_frames', '6',
         '--workers', '1']
  done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == str(tmp_path / 'd' / 'annotations.csv')
  assert len(_rows(tmp_path / 'd')) == 12
  bad = subprocess.run(cmd[:-4] + ['--size', '33'], capture_output=True, text=True,
                       check=False, timeout=120)
  assert bad.returncode != 0 and 'size=33' in bad.stderr
