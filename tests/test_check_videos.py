"""check_videos: each problem found on a real file written here, counts, cleaned CSV, the CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from halluc_jax import check_videos
from halluc_jax.data import video_check
import video_fixtures as vf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMITS = video_check.Limits(min_frames=8)
# file name -> the problems check_video must report (exactly these), and the row's label.
EXPECTED = {
    'good_a.mp4': set(), 'good_b.mp4': set(),
    'good_30fps.mkv': set(),  # 1 ms ticks: steps of 33 and 34 ms are not VFR.
    'bframes.mp4': set(),  # Decode order != display order: the window must be consecutive.
    'corrupt.mp4': {'unreadable'},
    'missing.mp4': {'missing'},
    'audio_only.mkv': {'no_video_stream'},
    'three_frames.mp4': {'too_short'},
    'truncated.mp4': {'truncated'},
    'odd_33x47.mkv': {'odd_resolution'},
    'vfr.mp4': {'vfr'},
    'rot90.mp4': {'rotated'},
}
LABELS = {'good_b.mp4': 'b', 'three_frames.mp4': 'c'}  # the others are 'a'
VAL_ROW = 'val/good_c.mp4,b,val'


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  """Writes the files of EXPECTED (but missing.mp4) and a path,label,split CSV over them."""
  root = tmp_path_factory.mktemp('check_videos')
  files = root / 'train'
  files.mkdir()
  (root / 'val').mkdir()
  def write(name, **kwargs):
    vf.write_video(str(files / name), **{'codec': 'libx264', 'num_frames': 20, **kwargs})
  write('good_a.mp4')
  write('good_b.mp4')
  vf.write_video(str(root / 'val' / 'good_c.mp4'), codec='libx264', num_frames=20)
  write('good_30fps.mkv', fps=30)
  write('bframes.mp4', num_frames=120, gop=12,
        options={'x264-params': 'open-gop=1:bframes=3:scenecut=0'})
  (files / 'corrupt.mp4').write_bytes(np.random.default_rng(0).bytes(20000))
  vf._write_audio(str(files / 'audio_only.mkv'))  # pylint: disable=protected-access
  write('three_frames.mp4', num_frames=3)
  write('full.mp4', num_frames=80, container_options={'movflags': 'faststart'})
  data = (files / 'full.mp4').read_bytes()
  (files / 'truncated.mp4').write_bytes(data[:len(data) // 2])  # Header promises 80 frames.
  os.remove(files / 'full.mp4')
  write('odd_33x47.mkv', codec='ffv1', height=47, width=33)
  write('vfr.mp4', num_frames=40, times=vf.VFR_TIMES_MS)
  write('rot90.mp4', rotation=90)
  rows = [f'train/{n},{LABELS.get(n, "a")},train' for n in EXPECTED]
  (root / 'ann.csv').write_text('path,label,split\n' + '\n'.join(rows + [VAL_ROW]) + '\n')
  (root / 'classes.txt').write_text('a\nb\nc\n')
  return root


def _run(dataset, tmp_path, workers=0, **kwargs):
  return check_videos.run(str(dataset / 'ann.csv'), str(dataset), kwargs.get('split', 'train'),
                          LIMITS, workers, str(tmp_path / 'report.json'),
                          str(tmp_path / 'clean.csv'), kwargs.get('drop_warnings', False))


def test_each_file_gets_exactly_its_problems(dataset):
  for name, expected in EXPECTED.items():
    result = video_check.check_video(str(dataset / 'train' / name), LIMITS)
    assert set(result['problems']) == expected, (name, result)
    assert (result['info'] is None) == bool(expected & {'missing', 'unreadable',
                                                        'no_video_stream'}), name
  rotated = video_check.check_video(str(dataset / 'train' / 'rot90.mp4'), LIMITS)
  assert rotated['info']['rotation'] == 90 and '90 degrees' in rotated['problems']['rotated']
  odd = video_check.check_video(str(dataset / 'train' / 'odd_33x47.mkv'), LIMITS)
  assert 'odd width or height' in odd['problems']['odd_resolution']
  unreadable = video_check.check_video(str(dataset / 'train' / 'corrupt.mp4'), LIMITS)
  assert 'not a readable media file' in unreadable['problems']['unreadable']


def test_thresholds_are_flags():
  strict = video_check.Limits(min_side=64, max_aspect=1.2)
  reasons = video_check._odd_resolution(48, 64, strict)  # pylint: disable=protected-access
  assert 'short side < min_side=64' in reasons and 'aspect ratio beyond 1.2:1' in reasons
  steps = np.array([33, 34, 33, 34, 33], float) * 1e-3  # 30 fps on 1 ms ticks.
  assert not video_check._vfr(steps, 1e-3, strict)  # pylint: disable=protected-access
  assert video_check._vfr(steps * [1, 1, 2, 1, 1], 1e-3, strict)  # pylint: disable=protected-access


def test_counts_report_and_cleaned_csv(dataset, tmp_path):
  report = _run(dataset, tmp_path)
  counts = {p: n for p, n in report['counts'].items() if n}
  assert counts == {'missing': 1, 'no_video_stream': 1, 'unreadable': 1, 'too_short': 1,
                    'truncated': 1, 'rotated': 1, 'vfr': 1, 'odd_resolution': 1}
  assert report['num_checked'] == len(EXPECTED) and report['num_kept'] == len(EXPECTED) - 4
  assert json.loads((tmp_path / 'report.json').read_text()) == report
  keep = [n for n, p in EXPECTED.items() if not p & set(video_check.BLOCKING)]
  # Same layout, rows in input order, the val row copied unchecked.
  assert (tmp_path / 'clean.csv').read_text() == 'path,label,split\n' + ''.join(
      f'train/{n},{LABELS.get(n, "a")},train\n' for n in keep) + VAL_ROW + '\n'
  _run(dataset, tmp_path, drop_warnings=True)
  assert (tmp_path / 'clean.csv').read_text() == 'path,label,split\n' + ''.join(
      f'train/{n},{LABELS.get(n, "a")},train\n' for n, p in EXPECTED.items() if not p) + (
          VAL_ROW + '\n')


def test_workers_give_the_same_report(dataset, tmp_path):
  serial = _run(dataset, tmp_path, workers=0, split=None)
  parallel = _run(dataset, tmp_path, workers=2, split=None)
  assert parallel == serial and serial['num_checked'] == len(EXPECTED) + 1


def test_kinetics_layout_clean_copy_is_the_input(tiny_dataset, tmp_path):
  """The generated dataset (Kinetics CSV, 12-24 frames): only clips under 16 frames drop."""
  csv_path = tiny_dataset / 'annotations.csv'
  report = check_videos.run(str(csv_path), str(tiny_dataset), None, video_check.Limits(), 0,
                            None, str(tmp_path / 'clean.csv'), False)
  meta = [json.loads(line) for line in (tiny_dataset / 'metadata.jsonl').read_text().splitlines()]
  short = {m['id'] for m in meta if m['num_frames'] < 16}
  assert {p: n for p, n in report['counts'].items() if n} == (
      {'too_short': len(short)} if short else {})
  lines = csv_path.read_text().splitlines()
  kept = [l for l in lines[1:] if l.split(',')[1] not in short]
  assert (tmp_path / 'clean.csv').read_text().splitlines() == lines[:1] + kept


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'halluc_jax.check_videos', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, 'PYTHONPATH': REPO})


def test_cli(dataset, tmp_path):
  out = _cli(f'--annotations={dataset / "ann.csv"}', '--split=train', '--workers=2',
             '--min_frames=8', f'--report={tmp_path / "r.json"}')
  assert out.returncode == 0, out.stderr
  assert 'unreadable             1  blocking' in out.stdout
  assert f'{len(EXPECTED)} rows checked, {len(EXPECTED) - 4} kept, 4 dropped' in out.stdout
  assert json.loads((tmp_path / 'r.json').read_text())['counts']['vfr'] == 1


@pytest.mark.parametrize('args, message', [
    (['--annotations=/nonexistent/ann.csv'], 'Annotation CSV not found'),
    (['--split=test'], "no rows for split 'test' (splits present: ['train', 'val'])"),
])
def test_bad_input_is_one_clear_line(dataset, args, message):
  if not args[0].startswith('--annotations'):
    args = [f'--annotations={dataset / "ann.csv"}', *args]
  out = _cli(*args, '--workers=0')
  assert out.returncode == 1 and message in out.stderr and 'Traceback' not in out.stderr


@pytest.mark.parametrize('text, message', [
    ('video,class\nx.mp4,a\n', 'matches neither the Kinetics layout'),
    ('label,youtube_id,time_start,time_end,split\na,vid,zero,10,train\n', 'line 2: malformed row'),
])
def test_bad_csv_names_the_problem(tmp_path, text, message):
  (tmp_path / 'ann.csv').write_text(text)
  with pytest.raises(ValueError, match=message):
    check_videos.run(str(tmp_path / 'ann.csv'), None, None, LIMITS, 0, None, None, False)
