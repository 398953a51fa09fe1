"""tables.py and results_io.py on fake finished workdirs and run summaries.

Grouping over seeds, mean +- std, skips, the CLI; export of run summaries (round trip,
overwrite protection), the same table from summaries as from workdirs, the paired comparison
against scipy, pairing by seed, and --update between markers.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scipy import stats

from halluc_jax.evaluation import results_io
from halluc_jax.evaluation import table_rows
from halluc_jax.tools import tables


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
  assert lines[0].startswith('| setting | streams | hal. loss | CENet | val top-1 | test top-1 |')
  # Runs from before the test split: '-' in every test column and in the paired comparison.
  assert '| rgb_only | RGB only (baseline) | - | - | 53.0 ± 4.2 | - | 2 | - | - | - | - | 10.5 ' \
         '| ref. | - | - |' in lines
  assert '| hal_odf | ODF | MSE | - | 60.0 | - | 1 | - | - | - | - | 15.0 | - | 0 | - |' in lines
  assert lines[4].endswith('| 74.0 ± 4.0 | - | 3 | - | - | - | - | - | - | 0 | - |')
  assert 'Skipped 1 run(s)' in markdown and 'two-sided, uncorrected' in markdown


def test_different_settings_with_same_seed_are_not_merged(tmp_path):
  dirs = [_workdir(tmp_path, 'a', _config('x', 0, groups=('odf',)), 0.6),
          _workdir(tmp_path, 'b', _config('x', 0, groups=('odf',), loss='uncertainty',
                                          structure='diag'), 0.7)]
  result_path = tmp_path / 'b' / 'test' / 'eval_latest.json'
  result_path.parent.mkdir()
  result_path.write_text(json.dumps({'top1': 0.65, 'mAP': 0.4321}))  # a multi-label run
  markdown, rows, _ = tables.build_table(dirs)
  assert [(r['loss'], r['covariance']) for r in rows] == [('MSE', '-'), ('Uncert.', 'diag')]
  assert '| test mAP |' in markdown.splitlines()[0]
  assert markdown.splitlines()[3].startswith(
      '| x | ODF | Uncert. | diag | 70.0 | 65.0 | 1 | - | - | 43.2 | - | - | - |')


def test_cli_writes_markdown_and_expands_globs(tmp_path):
  for seed in range(2):
    _workdir(tmp_path, f'hal_sdf_s{seed}', _config('hal_sdf', seed, groups=('sdf',)),
             0.6 + 0.1 * seed)
  out = tmp_path / 'table.md'
  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tools.tables',
                         f'--workdirs={tmp_path}/hal_sdf_*', f'--out={out}'],
                        capture_output=True, text=True, check=True)
  assert '| hal_sdf | SDF | MSE | - | 65.0 ± 7.1 | - | 2 |' in proc.stdout
  assert out.read_text() == proc.stdout
  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tools.tables',
                         f'--workdirs={tmp_path}/nothing_here'], capture_output=True, text=True)
  assert proc.returncode != 0 and 'no finished workdir' in proc.stderr


def _test_result(top1, quality=None, num_classes=3):
  """A test/eval_latest.json as evaluate.py writes it, bulky fields included."""
  return {'step': 10, 'num_videos': 24, 'num_views': 48, 'num_invalid_views': 0,
          'multi_label': False, 'top1': top1, 'top5': 0.95, 'mean_class_accuracy': top1 - 0.02,
          'per_class_accuracy': {f'class_{c}': 0.5 for c in range(num_classes)},
          'confusion': [[1] * num_classes for _ in range(num_classes)],
          'hallucination': quality or {}, 'eval_seconds': 3.5}


def _quality(r2, cosine=0.8, base_r2=0.0, base_cosine=0.5):
  return {'cosine': cosine, 'r2': r2, 'num_clips': 48, 'train_mean_cosine': base_cosine,
          'train_mean_r2': base_r2}


def _with_test(path, top1, quality=None, num_classes=3):
  os.makedirs(os.path.join(path, 'test'))
  with open(os.path.join(path, 'test', 'eval_latest.json'), 'w') as f:
    json.dump(_test_result(top1, quality, num_classes), f)
  return path


def _ablation(root, seeds=(0, 1, 2), odf_seeds=(0, 1, 2)):
  """Workdirs of a baseline and an ODF row with val and test results; the ODF row is better."""
  dirs = []
  for seed in seeds:
    config = dict(_config('rgb_only', seed, aux_dir=''), data={
        'aux_dir': '', 'shuffle_seed': seed, 'eval_split': 'val', 'test_split': 'test'})
    dirs.append(_with_test(_workdir(root, f'rgb_only_s{seed}', config, 0.5 + 0.01 * seed, 600,
                                    r2=None), 0.40 + 0.02 * seed))
  for seed in odf_seeds:
    config = _config('hal_odf', seed, groups=('odf',))
    config['data'].update(eval_split='val', test_split='test')
    quality = {'odf': _quality(0.3), 'sdf': _quality(0.2, cosine=0.4)}  # sdf loses on cosine
    dirs.append(_with_test(_workdir(root, f'hal_odf_s{seed}', config, 0.6, 900),
                           0.45 + 0.03 * seed, quality))
  return dirs


def test_export_round_trip(tmp_path):
  config = _config('hal_odf', 3, groups=('odf',))
  config['data'].update(eval_split='val', test_split='test')
  workdir = _with_test(_workdir(tmp_path, 'wd', config, 0.6, seconds=120),
                       0.55, {'odf': _quality(0.25)})
  val = json.loads((tmp_path / 'wd' / 'eval' / 'eval_latest.json').read_text())
  out = tmp_path / 'results'
  path, status = results_io.export(workdir, str(out))
  assert (path, status) == (str(out / 'hal_odf_s3.json'), 'written')

  summary = json.loads(open(path).read())
  assert summary['format'] == results_io.FORMAT and summary['config'] == config
  assert (summary['name'], summary['seed'], summary['seconds']) == ('hal_odf', 3, 120.0)
  assert summary['seconds_from'] == 'summary.json:train_seconds'
  assert summary['val'] == {'top1': 0.6, 'top5': 0.9, 'mean_class_accuracy': val['top1'] - 0.01,
                            'split': 'val', 'hallucination': val['hallucination']}
  test = summary['test']
  assert test['split'] == 'test' and test['top1'] == 0.55 and test['num_videos'] == 24
  assert test['confusion'] == [[1] * 3] * 3  # small: kept
  assert 'per_class_accuracy' not in test and 'eval_seconds' not in test
  assert test['hallucination'] == {'odf': _quality(0.25)}
  assert summary['git_commit'] is None or len(summary['git_commit']) == 40
  assert summary['date'].endswith('+00:00') and summary['evaluated']
  assert summary['environment'] is None  # a workdir from before environment.json
  env = results_io.environment()
  assert env['packages']['jax'] and env['packages']['opencv-contrib-python-headless']
  (tmp_path / 'wd' / results_io.ENVIRONMENT_FILE).write_text(json.dumps(env))
  assert results_io.export(workdir, str(out))[1] != 'conflict'  # provenance only: not a new run
  assert json.loads(open(path).read())['environment'] in (None, env)

  run = results_io.load_summary(path)
  assert run['config'] == config and run['test'] == test and run['seconds'] == 120.0
  assert results_io.run_name(run) == 'hal_odf'
  # A large confusion matrix is dropped.
  big = results_io.slim_result(_test_result(0.5, num_classes=results_io.MAX_CONFUSION + 1))
  assert 'confusion' not in big and big['top1'] == 0.5


def test_export_refuses_to_overwrite_a_different_run(tmp_path):
  out = str(tmp_path / 'results')
  first = _workdir(tmp_path, 'a', _config('hal_odf', 0, groups=('odf',)), 0.6)
  path, _ = results_io.export(first, out)
  before = open(path).read()
  assert results_io.export(first, out) == (path, 'unchanged')  # provenance alone: untouched
  assert open(path).read() == before

  other = _workdir(tmp_path, 'b', _config('hal_odf', 0, groups=('odf',), loss='uncertainty'),
                   0.7)
  with pytest.raises(results_io.ExportConflict, match=r'hal_odf_s0\.json.*different config'):
    results_io.export(other, out)
  assert open(path).read() == before

  rerun = _workdir(tmp_path, 'c', _config('hal_odf', 0, groups=('odf',)), 0.65)  # same config
  assert results_io.export(rerun, out) == (path, 'updated')
  assert results_io.load_summary(path)['eval']['top1'] == 0.65
  with pytest.raises(ValueError, match='cannot export .*config.json is missing'):
    results_io.export(str(tmp_path / 'nowhere'), out)

  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tools.tables', f'--export={other}',
                         f'--results_dir={out}'], capture_output=True, text=True)
  assert proc.returncode != 0 and 'hal_odf_s0.json already holds a run' in proc.stderr


def test_table_from_results_equals_table_from_workdirs(tmp_path):
  dirs = _ablation(tmp_path / 'w')
  out = tmp_path / 'results'
  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tools.tables',
                         f'--export={tmp_path}/w/*_s*', f'--results_dir={out}'],
                        capture_output=True, text=True, check=True)
  assert proc.stdout.count('tables: written') == 6
  files = [str(out / os.path.basename(d)) + '.json' for d in dirs]
  from_workdirs, rows, _ = tables.build_table(dirs)
  from_results, _, skipped = tables.build_table(results=files)
  assert not skipped and from_results == from_workdirs

  rgb, odf = rows
  assert odf['test_top1'] == pytest.approx(48.0) and odf['top1'] == pytest.approx(60.0)
  assert odf['test_hal_r2'] == pytest.approx(0.25) and odf['beats_train_mean'] == (3, 6)
  assert rgb['beats_train_mean'] == (0, 0) and rgb['is_baseline'] and odf['paired']['pairs'] == 3
  lines = from_results.splitlines()
  assert lines[2] == ('| rgb_only | RGB only (baseline) | - | - | 51.0 ± 1.0 | 42.0 ± 2.0 | 3 | '
                      '95.0 | 40.0 | - | - | 10.0 | ref. | - | - |')
  p = stats.ttest_rel([45, 48, 51], [40, 42, 44]).pvalue
  assert lines[3] == ('| hal_odf | ODF | MSE | - | 60.0 ± 0.0 | 48.0 ± 3.0 | 3 | 95.0 | 46.0 | '
                      f'0.250 | 3/6 | 15.0 | +6.0 ± 1.0 | 3 | {p:.3f} |')

  proc = subprocess.run([sys.executable, '-m', 'halluc_jax.tools.tables',
                         f'--results={out}/rgb_only_s*.json,{out}/hal_odf_s*.json'],
                        capture_output=True, text=True, check=True)
  assert proc.stdout == from_workdirs


def test_paired_stats_against_scipy():
  row = [61.2, 58.3, 64.6, 59.4, 62.5]
  base = [57.3, 58.3, 60.4, 55.2, 61.5]
  out = tables.paired_stats(row, base)
  diffs = np.subtract(row, base)
  assert out['pairs'] == 5
  assert out['mean'] == pytest.approx(diffs.mean()) and out['mean'] == pytest.approx(2.66)
  assert out['std'] == pytest.approx(np.std(diffs, ddof=1))
  assert out['p'] == pytest.approx(stats.ttest_rel(row, base).pvalue)
  t = diffs.mean() / (np.std(diffs, ddof=1) / np.sqrt(5))
  assert out['p'] == pytest.approx(2 * stats.t.sf(abs(t), df=4))  # two-sided
  assert tables.paired_stats([50.0], [40.0]) == {'mean': 10.0, 'std': None, 'pairs': 1,
                                                 'p': None}
  assert tables.paired_stats([], []) == {'mean': None, 'std': None, 'pairs': 0, 'p': None}
  assert tables.paired_stats([50.0, 51.0], [50.0, 51.0])['p'] is None  # no spread: no p


def test_pairing_by_seed_leaves_missing_seeds_unpaired(tmp_path):
  # Baseline seeds 0-4, ODF seeds 1-5 listed out of order: seeds 1-4 pair, 0 and 5 do not.
  dirs = _ablation(tmp_path, seeds=range(5), odf_seeds=(5, 3, 1, 2, 4))
  markdown, rows, _ = tables.build_table(dirs)
  odf = rows[1]
  base = {s: 40.0 + 2 * s for s in range(5)}
  mine = {s: 45.0 + 3 * s for s in (1, 2, 3, 4, 5)}
  pairs = [1, 2, 3, 4]
  expected = tables.paired_stats([mine[s] for s in pairs], [base[s] for s in pairs])
  assert odf['seeds'] == 5 and odf['paired'] == pytest.approx(expected)
  assert expected['pairs'] == 4 and expected['mean'] == pytest.approx(7.5)
  assert f'| +7.5 ± 1.3 | 4 | {expected["p"]:.3f} |' in markdown.splitlines()[3]

  # --baseline NAME: compare with the ODF row instead; the RGB row is then the compared one.
  markdown, rows, _ = tables.build_table(dirs, baseline='hal_odf')
  assert rows[1]['is_baseline'] and rows[0]['paired']['mean'] == pytest.approx(-7.5)
  with pytest.raises(ValueError, match='--baseline nope: no such setting'):
    tables.build_table(dirs, baseline='nope')
  markdown, rows, _ = tables.build_table(dirs, only=['hal_odf'])
  assert [r['name'] for r in rows] == ['hal_odf'] and rows[0]['paired']['pairs'] == 4


DOC = """Intro line.

<!-- table:abl -->
old table
<!-- /table:abl -->

Outro <!-- table:other --> kept <!-- /table:other -->
"""


def test_update_replaces_only_between_markers(tmp_path):
  table = '| a | b |\n|---|---|\n| 1 | 2 |\n\nLegend.\n'
  new = tables.replace_between_markers(DOC, 'abl', table)
  assert new == DOC.replace('old table\n', '\n' + table + '\n')
  assert tables.replace_between_markers(new, 'abl', table) == new  # idempotent
  # Indented markers (a docstring inside a function): the table is indented alike.
  doc = 'def f():\n  """Doc.\n\n  <!-- table:abl -->\n  <!-- /table:abl -->\n  """\n'
  assert tables.replace_between_markers(doc, 'abl', '| x |\n') == (
      'def f():\n  """Doc.\n\n  <!-- table:abl -->\n\n  | x |\n\n  <!-- /table:abl -->\n  """\n')
  for text, message in ((DOC, 'missing'), (DOC + '<!-- table:abl -->', 'abl -->" exactly once'),
                        ('<!-- /table:abl -->\n<!-- table:abl -->', 'comes before')):
    marker = 'missing' if message == 'missing' else 'abl'
    with pytest.raises(ValueError, match=message):
      tables.replace_between_markers(text, marker, table)

  dirs = _ablation(tmp_path / 'w', seeds=(0,), odf_seeds=(0,))
  readme = tmp_path / 'README.md'
  readme.write_text(DOC)
  config = tmp_path / 'cfg.py'
  config.write_text('"""Row.\n\n<!-- table:abl -->\n<!-- /table:abl -->\n"""\nX = 1\n')
  cli = [sys.executable, '-m', 'halluc_jax.tools.tables', f'--workdirs={tmp_path}/w/*',
         f'--update={readme},{config}', '--marker=abl']
  proc = subprocess.run(cli, capture_output=True, text=True, check=True)
  text = readme.read_text()
  assert text.startswith('Intro line.\n\n<!-- table:abl -->\n\n| setting |')
  assert text.endswith('uncorrected' + text.split('uncorrected')[1])
  assert '\n\n<!-- /table:abl -->\n\nOutro <!-- table:other --> kept' in text
  assert proc.stdout in text and proc.stdout in config.read_text()
  assert config.read_text().endswith('<!-- /table:abl -->\n"""\nX = 1\n')
  compile(config.read_text(), 'cfg.py', 'exec')  # still Python

  before = readme.read_text()
  proc = subprocess.run(cli[:-1] + ['--marker=nope'], capture_output=True, text=True)
  assert proc.returncode != 0 and 'README.md: expected the marker "<!-- table:nope -->"' \
      in proc.stderr
  assert readme.read_text() == before


def test_a_key_added_later_groups_old_runs_by_the_value_they_ran_with(tmp_path):
  """loss.constant_coords (table_rows.LATER_KEYS): an uncertainty run from before the key ran
  as 'model', so it is not merged with a new 'unit_precision' run; for MSE the key is inert,
  so MSE runs with and without it stay one row."""
  def with_key(config, value):
    config['loss']['constant_coords'] = value
    return config
  dirs = [_workdir(tmp_path, 'u_old', _config('u', 0, loss='uncertainty'), 0.5),
          _workdir(tmp_path, 'u_new', with_key(_config('u', 1, loss='uncertainty'),
                                               'unit_precision'), 0.6),
          _workdir(tmp_path, 'u_lit', with_key(_config('u', 2, loss='uncertainty'), 'model'), 0.7),
          _workdir(tmp_path, 'm_old', _config('m', 0), 0.4),
          _workdir(tmp_path, 'm_new', with_key(_config('m', 1), 'unit_precision'), 0.45)]
  _, rows, _ = tables.build_table(dirs)
  seeds = sorted((r['name'], r['seeds']) for r in rows)
  assert seeds == [('m', 2), ('u', 1), ('u', 2)], rows


def test_init_from_inflate_and_source_grid_are_inert_where_they_change_nothing():
  """init_from.inflate matters for image formats only, source_grid only when set; without a
  checkpoint the whole init_from block is dropped (table_rows.LATER_KEYS)."""
  key = table_rows._without_seeds  # pylint: disable=protected-access
  base = {'path': 'ckpt', 'format': 'videomae', 'groups': 'backbone'}
  new = dict(base, inflate='average', source_grid='')
  assert key({'init_from': base}) == key({'init_from': new})
  image = dict(base, format='timm_vit')
  assert key({'init_from': image}) == key({'init_from': dict(image, inflate='central')})
  assert key({'init_from': image}) != key({'init_from': dict(image, inflate='average')})
  assert key({'init_from': image}) != key({'init_from': dict(image, source_grid='1,14,14')})
  assert 'init_from' not in key({'init_from': dict(new, path='', format='timm_vit')})
