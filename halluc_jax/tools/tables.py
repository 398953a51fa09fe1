r"""Renders the paper-style ablation table from finished runs: workdirs or committed summaries.

Export finished workdirs as run summaries (one small JSON per run, format in `results_io`;
`bash run.sh ablation` does this after every run), then render the table from them:

  python -m halluc_jax.tools.tables --export 'workdirs/ablation/*_s*' \
      --results_dir results/ablation/objects
  python -m halluc_jax.tools.tables --out table.md \
      --results 'results/ablation/objects/rgb_only_s*.json,results/ablation/objects/hal_*.json'
  python -m halluc_jax.tools.tables --workdirs 'workdirs/ablation/rgb_only_s*,workdirs/ablation/hal_*'

Regenerate a table kept in a document (README.md, a config's docstring) between the lines
`<!-- table:NAME -->` and `<!-- /table:NAME -->`; `--rows` renders only some settings (the
paired comparison still uses every run given):

  python -m halluc_jax.tools.tables --results 'results/ablation/objects/*.json' \
      --update README.md --marker ablation_objects
  for row in rgb_only hal_odf hal_sdf; do python -m halluc_jax.tools.tables \
      --results 'results/ablation/objects/*.json' --rows $row \
      --update configs/$row.py --marker ablation_objects; done

Runs whose configs are equal up to the seed keys (SEED_KEYS) are one row; rows keep the order
in which their first run was listed (comma-separated globs, each sorted). Every row is compared
with the baseline row (the RGB-only setting, or `--baseline NAME`) by a paired test on test
top-1, runs paired by `config.seed`. A workdir or file that is not a finished run is skipped,
logged and listed under the table.
"""
import glob
import logging
import os
import sys

from absl import app
from absl import flags

from halluc_jax.evaluation import results_io
from halluc_jax.evaluation import table_rows

_WORKDIRS = flags.DEFINE_string('workdirs', None, 'Comma-separated workdirs; globs allowed.')
_RESULTS = flags.DEFINE_string('results', None, 'Comma-separated run summary JSON files; globs '
                               'allowed.')
_EXPORT = flags.DEFINE_string('export', None, 'Comma-separated finished workdirs (globs allowed) '
                              'to write as run summaries into --results_dir.')
_RESULTS_DIR = flags.DEFINE_string('results_dir', None, 'Where --export writes run summaries.')
_OUT = flags.DEFINE_string('out', None, 'Write the markdown table here (stdout always).')
_UPDATE = flags.DEFINE_string('update', None, 'Comma-separated files whose text between the '
                              '--marker lines is replaced by the table.')
_MARKER = flags.DEFINE_string('marker', None, 'NAME of <!-- table:NAME --> ... '
                              '<!-- /table:NAME --> for --update.')
_BASELINE = flags.DEFINE_string('baseline', None, 'Setting name of the paired comparison\'s '
                                'baseline row; default: the RGB-only row.')
_ROWS = flags.DEFINE_string('rows', None, 'Comma-separated setting names to render (default all).')

# The row logic is table_rows'; these names stay reachable from here, as before the split.
SEED_KEYS, TIMING_KEYS = table_rows.SEED_KEYS, results_io.TIMING_KEYS
describe_setting, group_runs = table_rows.describe_setting, table_rows.group_runs
summarise, paired_stats = table_rows.summarise, table_rows.paired_stats
LEGEND = (
    'val / test top-1: video top-1 (%, multi-view averaged) on the validation split and on the '
    'held-out test split, mean ± sample std over seeds ("-" std with one seed). Runs select on '
    'val only: no row, setting or checkpoint was chosen by its test result. seeds: runs in the '
    'row. test top-5, mean class acc.: means over seeds, test split. hal. R²: pooled R² of '
    'hallucinated vs ground-truth descriptors on test, mean over streams and seeds; > train '
    'mean: (seed, stream) pairs whose R² and cosine both beat the constant train-mean '
    'predictor, of those where it is known. train min: wall minutes per run, mean. Δ test top-1 '
    'vs baseline (ref.): mean ± sample std over paired seeds of (row − baseline) test top-1 in '
    'points, runs paired by config.seed (same seed, same data order); pairs: seeds with a test '
    'result in both rows; p: '
    'paired t-test (scipy.stats.ttest_rel), two-sided, uncorrected for the number of rows, "-" '
    'with fewer than 2 pairs. "-" elsewhere: no such result (e.g. runs from before the test '
    'split).')


def _fmt(x, digits=1):
  return '-' if x is None else f'{x:.{digits}f}'


def _mean_std(mean, std):
  return _fmt(mean) + ('' if std is None or mean is None else f' ± {std:.1f}')


def _fmt_p(p):
  return '-' if p is None else (f'{p:.3f}' if p >= 1e-3 else f'{p:.1e}')


def _paired_cells(row):
  """[Δ test top-1, pairs, p] of a row."""
  if row['is_baseline']:
    return ['ref.', '-', '-']
  paired = row['paired']
  if paired is None:
    return ['-', '-', '-']
  delta = '-' if paired['mean'] is None else f'{paired["mean"]:+.1f}'
  if paired['std'] is not None:
    delta += f' ± {paired["std"]:.1f}'
  return [delta, str(paired['pairs']), _fmt_p(paired['p'])]


def render(rows, skipped=()):
  """Markdown table and its legend, one row per setting, in the order given."""
  with_map = any(r['test_map'] is not None for r in rows)
  head = ['setting', 'streams', 'hal. loss', 'CENet', 'val top-1', 'test top-1', 'seeds',
          'test top-5', 'test mean class acc.'] + (['test mAP'] if with_map else []) + \
         ['hal. R² (test)', '> train mean', 'train min', 'Δ test top-1 vs baseline', 'pairs',
          'p (paired t)']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    beats, known = r['beats_train_mean']
    cells = [r['name'], r['streams'], r['loss'], r['covariance'],
             _mean_std(r['top1'], r['top1_std']), _mean_std(r['test_top1'], r['test_top1_std']),
             str(r['seeds']), _fmt(r['test_top5']), _fmt(r['test_mca'])] + \
            ([_fmt(r['test_map'])] if with_map else []) + \
            [_fmt(r['test_hal_r2'], 3), f'{beats}/{known}' if known else '-', _fmt(r['minutes'])] \
            + _paired_cells(r)
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines += ['', LEGEND]
  if skipped:
    lines += ['', f'Skipped {len(skipped)} run(s): ' + '; '.join(skipped) + '.']
  return '\n'.join(lines) + '\n'


def replace_between_markers(text, marker, table, where='text'):
  """text with the lines between `<!-- table:NAME -->` and `<!-- /table:NAME -->` replaced.

  The table is indented like the opening marker and set off by blank lines.

  Raises:
    ValueError: a marker is missing, repeated, or the closing one comes first.
  """
  start, end = f'<!-- table:{marker} -->', f'<!-- /table:{marker} -->'
  for tag in (start, end):
    if text.count(tag) != 1:
      raise ValueError(f'{where}: expected the marker "{tag}" exactly once, found it '
                       f'{text.count(tag)} times.')
  i, j = text.index(start), text.index(end)
  if j < i:
    raise ValueError(f'{where}: "{end}" comes before "{start}".')
  indent = text[text.rfind('\n', 0, i) + 1:i]
  indent = '' if indent.strip() else indent
  body = ''.join(indent + line if line.strip() else line
                 for line in ('\n' + table + '\n').splitlines(keepends=True))
  return text[:i + len(start)] + '\n' + body + indent + text[j:]


def update_file(path, marker, table):
  """Rewrites the marked table in `path` (see replace_between_markers); True if it changed."""
  with open(path, encoding='utf-8') as f:
    text = f.read()
  new = replace_between_markers(text, marker, table, where=path)
  if new == text:
    return False
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    f.write(new)
  os.replace(path + '.tmp', path)
  return True


def expand(spec, want=os.path.isdir):
  """'a,b*,c' -> the matches of each entry, sorted, deduplicated (no match: kept as given)."""
  out = []
  for entry in (e.strip() for e in (spec or '').split(',')):
    if entry:
      matches = sorted(p for p in glob.glob(entry) if want(p))
      out.extend(p for p in (matches or [entry]) if p not in out)
  return out


def expand_workdirs(spec):
  return expand(spec, os.path.isdir)


def load_run(workdir):
  """{'workdir', 'config', 'eval', 'test', 'seconds', ...} of a finished workdir, or a reason."""
  return results_io.load_workdir(workdir)


def _load_all(workdirs, results):
  runs, skipped = [], []
  for path, loader in [(w, results_io.load_workdir) for w in workdirs] + \
                      [(r, results_io.load_summary) for r in results]:
    run = loader(path)
    if isinstance(run, str):
      logging.warning('tables: skipping %s (%s).', path, run)
      skipped.append(run)
    else:
      runs.append(run)
  return runs, skipped


def build_table(workdirs=(), results=(), baseline=None, only=None):
  """Loads, groups and renders; returns (markdown, rows, skipped reasons).

  Args:
    workdirs: finished training workdirs.
    results: run summary files (results_io).
    baseline: setting name of the paired comparison's baseline; None: the RGB-only row.
    only: setting names to render (all rows are still computed); None: all.
  """
  runs, skipped = _load_all(workdirs, results)
  groups = table_rows.group_runs(runs)
  base = table_rows.find_baseline(groups, baseline)
  rows = [summarise(g, groups[base] if base is not None else None) for g in groups]
  if only:
    unknown = set(only) - {r['name'] for r in rows}
    if unknown:
      raise ValueError(f'--rows: no setting named {sorted(unknown)} among the runs.')
    rows = [r for r in rows if r['name'] in only]
  return render(rows, skipped), rows, skipped


def export_runs(workdirs, results_dir):
  """Exports each workdir; returns the error messages (empty: all exported)."""
  errors = []
  for workdir in workdirs:
    try:
      path, status = results_io.export(workdir, results_dir)
      print(f'tables: {status} {path} ({workdir})')
    except (ValueError, results_io.ExportConflict) as e:
      errors.append(str(e))
  return errors


def _split(spec):
  return [s.strip() for s in (spec or '').split(',') if s.strip()]


def _check_flags():
  if not (_WORKDIRS.value or _RESULTS.value or _EXPORT.value):
    raise app.UsageError('give --workdirs and/or --results (comma-separated, globs allowed), '
                         'or --export with --results_dir.')
  if _EXPORT.value and not _RESULTS_DIR.value:
    raise app.UsageError('--export needs --results_dir.')
  if bool(_UPDATE.value) != bool(_MARKER.value):
    raise app.UsageError('--update and --marker go together.')


def main(argv):
  del argv
  _check_flags()
  if _EXPORT.value:
    errors = export_runs(expand_workdirs(_EXPORT.value), _RESULTS_DIR.value)
    if errors:
      raise SystemExit('tables: export failed:\n  ' + '\n  '.join(errors))
  if not (_WORKDIRS.value or _RESULTS.value):
    return
  markdown, rows, _ = build_table(expand_workdirs(_WORKDIRS.value),
                                  expand(_RESULTS.value, os.path.isfile), _BASELINE.value,
                                  _split(_ROWS.value) or None)
  sys.stdout.write(markdown)
  if not rows:
    raise SystemExit('tables: no finished workdir or run summary found (a workdir needs '
                     'config.json and eval/eval_latest.json).')
  if _OUT.value:
    with open(_OUT.value, 'w', encoding='utf-8') as f:
      f.write(markdown)
  for path in _split(_UPDATE.value):
    changed = update_file(path, _MARKER.value, markdown)
    print(f'tables: {"updated" if changed else "unchanged"} {path} (marker {_MARKER.value})',
          file=sys.stderr)


if __name__ == '__main__':
  app.run(main)
