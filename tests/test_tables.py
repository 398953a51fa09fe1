"""tables.py on fake finished workdirs: grouping over seeds, mean +- std, skips, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from halluc_jax import tables


def _config(name, seed, groups=None, loss='mse', structure='grouped', aux_dir='data/t'):
  """The config.json keys tables.py reads, as configs/default.py + the ablations name them."""
  streams = {'use': [], 'use_groups': list(groups or ())}
  return {'name': name, 'seed': seed, 'data': {'aux_dir': aux_dir, 'shuffle_seed': seed},
          'model': {'streams': streams, 'cenet': {'structure': structure}},
          'loss': {'hallucination': loss, 'robust': 'none'}}


def _workdir(root, dirname, config, top1, seconds=None, r2=0.5):
  path = root / dirname
  (path / 'eval').mkdir(parents=True)
  (path / 'config.json').write_text(json.dumps(config))
  (path / 'eval' / 'eval_latest.json').write_text(json.dumps({
      'top1': top1, 'top5': 0.9, 'mean_class_accuracy': top1 - 0.01,
      'hallucination': {} if r2 is None else {'odf': {'cosine': 0.8, 'r2': r2},
                                              'sdf': {'cosine': 0.7, 'r2': None}}}))
  if seconds is not None:
    (path / 'summary.json').write_text(json.dumps({'step': 10, 'train_seconds': seconds}))
  return str(path)


def test_groups_seeds_and_renders_mean_std(tmp_path):
  dirs = [
      _workdir(tmp_path, 'rgb_s0', _config('rgb_only', 0, groups=(), aux_dir=''), 0.50, 600,
               r2=None),
      _workdir(tmp_path, 'rgb_s1', _config('rgb_only', 1, groups=(), aux_dir=''), 0.56, 660,
               r2=None),
      _workdir(tmp_path, 'odf_s0', _config('hal_odf', 0, groups=('odf',)), 0.60, 900, r2=0.4),
      _workdir(tmp_path, 'unc_s0', _config('hal_all_unc_grouped', 0, groups=('sdf', 'odf', 'off'),
                                           loss='uncertainty'), 0.70),
      _workdir(tmp_path, 'unc_s1', _config('hal_all_unc_grouped', 1, groups=('sdf', 'odf', 'off'),
                                           loss='uncertainty'), 0.74),
      _workdir(tmp_path, 'unc_s2', _config('hal_all_unc_grouped', 2, groups=('sdf', 'odf', 'off'),
                                           loss='uncertainty'), 0.78),
  ]
  os.makedirs(tmp_path / 'unfinished')
  (tmp_path / 'unfinished' / 'config.json').write_text('{}')
  markdown, rows, skipped = tables.build_table(dirs + [str(tmp_path / 'unfinished')])

  assert [r['name'] for r in rows] == ['rgb_only', 'hal_odf', 'hal_all_unc_grouped']
  rgb, odf, unc = rows
  assert rgb['seeds'] == 2 and rgb['top1'] == pytest.approx(53.0)
  assert rgb['top1_std'] == pytest.approx(100 * np.std([0.50, 0.56], ddof=1))
  assert rgb['minutes'] == pytest.approx(10.5) and rgb['streams'].startswith('RGB only')
  assert odf['seeds'] == 1 and odf['top1_std'] is None and odf['hal_r2'] == pytest.approx(0.4)
  assert odf['minutes'] == pytest.approx(15.0)
  assert unc['seeds'] == 3 and unc['top1'] == pytest.approx(74.0)
  assert unc['minutes'] is None  # no timing.json: rendered as '-'
  assert (unc['streams'], unc['loss'], unc['covariance']) == ('OFF + ODF + SDF', 'Uncert.',
                                                              'grouped')
  assert len(skipped) == 1 and 'eval_latest.json is missing' in skipped[0]

  lines = markdown.splitlines()
  assert lines[0].startswith('| setting | streams | hal. loss | CENet | top-1')
  assert '| rgb_only | RGB only (baseline) | - | - | 53.0 ± 4.2 | 2 | 90.0 | 52.0 | - | 10.5 |' \
      in lines
  assert '| hal_odf | ODF | MSE | - | 60.0 | 1 | 90.0 | 59.0 | 0.400 | 15.0 |' in lines
  assert lines[4].endswith('| 74.0 ± 4.0 | 3 | 90.0 | 73.0 | 0.500 | - |')
  assert 'Skipped 1 workdir(s)' in markdown


def test_different_settings_with_same_seed_are_not_merged(tmp_path):
  dirs = [_workdir(tmp_path, 'a', _config('x', 0, groups=('odf',)), 0.6),
          _workdir(tmp_path, 'b', _config('x', 0, groups=('odf',), loss='uncertainty',
                                          structure='diag'), 0.7)]
  result_path = tmp_path / 'b' / 'eval' / 'eval_latest.json'
  result = json.loads(result_path.read_text())
  result_path.write_text(json.dumps(dict(result, mAP=0.4321)))  # a multi-label run
  markdown, rows, _ = tables.build_table(dirs)
  assert [(r['loss'], r['covariance']) for r in rows] == [('MSE', '-'), ('Uncert.', 'diag')]
  assert '| mAP |' in markdown.splitlines()[0]
  assert markdown.splitlines()[3].startswith(
      '| x | ODF | Uncert. | diag | 70.0 | 1 | 90.0 | 69.0 | 43.2 |')


def test_cli_writes_markdown_and_expands_globs(tmp_path):
  for seed in range(2):
    _workdir(tmp_path, f'hal_sdf_s{seed}', _config('hal_sdf', seed, groups=('sdf',)),
             0.6 + 0.1 * seed)
  out = tmp_path / 'table.md'
  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tables',
                         f'--workdirs={tmp_path}/hal_sdf_*', f'--out={out}'],
                        capture_output=True, text=True, check=True)
  assert '| hal_sdf | SDF | MSE | - | 65.0 ± 7.1 | 2 |' in proc.stdout
  assert out.read_text() == proc.stdout
  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tables',
                         f'--workdirs={tmp_path}/nothing_here'], capture_output=True, text=True)
  assert proc.returncode != 0 and 'no finished workdir' in proc.stderr
