r"""Renders the paper-style ablation table (SPEC 8.3) from finished workdirs.

  python -m halluc_jax.tables --workdirs 'workdirs/rgb_only_s*,workdirs/hal_*' --out table.md

Each workdir must hold `config.json` (written by the trainer) and `eval_latest.json` (written
by `halluc_jax.evaluate`); wall time comes from `timing.json` when the trainer wrote one. Runs
whose configs differ only in the seed are one row: top-1 is reported as mean +- sample std over
seeds. A workdir without those files is skipped, logged and listed under the table.
"""
import glob
import json
import logging
import os
import sys

import numpy as np
from absl import app
from absl import flags

_WORKDIRS = flags.DEFINE_string('workdirs', None, 'Comma-separated workdirs; globs allowed.')
_OUT = flags.DEFINE_string('out', None, 'Write the markdown table here (stdout always).')

# Keys that only change the random draw of a run, not the setting it measures.
SEED_KEYS = (('seed',), ('data', 'shuffle_seed'))
# Seconds of training wall time, in the order the trainer may name them in timing.json.
TIMING_KEYS = ('train_seconds', 'wall_seconds', 'total_seconds', 'seconds')
GROUP_ORDER = ('off', 'odf', 'sdf')  # how the paper lists streams: BFO first, then ODF, SDF


def _get(tree, path, default=None):
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return default
    tree = tree[key]
  return tree


def _without_seeds(config):
  config = json.loads(json.dumps(config))  # deep copy
  for path in SEED_KEYS:
    parent = _get(config, path[:-1]) if len(path) > 1 else config
    if isinstance(parent, dict):
      parent.pop(path[-1], None)
  return config


def describe_setting(config):
  """(streams, loss, covariance) of a run, read from its config dict.

  The stream selection is `model.stream_groups` (a sequence of group names, empty = no
  streams); no auxiliary targets (`data.aux_dir` empty) also means an RGB-only baseline.
  """
  groups = _get(config, ('model', 'stream_groups'))
  aux_dir = _get(config, ('data', 'aux_dir'), '')
  if not aux_dir or groups is not None and not list(groups):
    return 'RGB only (baseline)', '-', '-'
  if groups is None:
    streams = 'all streams'
  else:
    ordered = sorted(groups, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    streams = ' + '.join(g.upper() for g in ordered)
  loss = str(_get(config, ('model', 'hal_loss'), 'mse'))
  if loss == 'mse':
    return streams, 'MSE', '-'
  structure = _get(config, ('model', 'cenet', 'structure'), '?')
  return streams, 'Uncert.', str(structure)


def load_run(workdir):
  """{'workdir', 'config', 'eval', 'seconds'} of one finished run, or a reason string."""
  paths = {name: os.path.join(workdir, name) for name in ('config.json', 'eval_latest.json')}
  for path in paths.values():
    if not os.path.isfile(path):
      return f'{path} is missing'
  try:
    with open(paths['config.json']) as f:
      config = json.load(f)
    with open(paths['eval_latest.json']) as f:
      result = json.load(f)
  except (OSError, ValueError) as e:
    return f'unreadable JSON in {workdir}: {e}'
  seconds = None
  timing_path = os.path.join(workdir, 'timing.json')
  if os.path.isfile(timing_path):
    with open(timing_path) as f:
      timing = json.load(f)
    seconds = next((float(timing[k]) for k in TIMING_KEYS if timing.get(k) is not None), None)
  return {'workdir': workdir, 'config': config, 'eval': result, 'seconds': seconds}


def group_runs(runs):
  """Groups runs whose configs are equal up to the seed; keeps first-seen order."""
  groups = {}
  for run in runs:
    key = json.dumps(_without_seeds(run['config']), sort_keys=True)
    groups.setdefault(key, []).append(run)
  return list(groups.values())


def _pct(values):
  vals = [v for v in values if v is not None]
  return 100.0 * float(np.mean(vals)) if vals else None


def summarise(runs):
  """One table row (a dict of numbers) from the runs of one setting."""
  config = runs[0]['config']
  top1 = [r['eval'].get('top1') for r in runs if r['eval'].get('top1') is not None]
  quality = [q.get('r2') for r in runs for q in (r['eval'].get('hallucination') or {}).values()]
  seconds = [r['seconds'] for r in runs if r['seconds'] is not None]
  streams, loss, cov = describe_setting(config)
  return {
      'name': config.get('name') or os.path.basename(os.path.normpath(runs[0]['workdir'])),
      'streams': streams, 'loss': loss, 'covariance': cov, 'seeds': len(runs),
      'top1': 100.0 * float(np.mean(top1)) if top1 else None,
      'top1_std': 100.0 * float(np.std(top1, ddof=1)) if len(top1) > 1 else None,
      'top5': _pct([r['eval'].get('top5') for r in runs]),
      'mca': _pct([r['eval'].get('mean_class_accuracy') for r in runs]),
      'map': _pct([r['eval'].get('mAP') for r in runs]),
      'hal_r2': float(np.mean([q for q in quality if q is not None]))
                if any(q is not None for q in quality) else None,
      'minutes': float(np.mean(seconds)) / 60.0 if seconds else None,
  }


def _fmt(x, digits=1):
  return '-' if x is None else f'{x:.{digits}f}'


def render(rows, skipped=()):
  """Markdown table, one row per setting, in the order given."""
  with_map = any(r['map'] is not None for r in rows)
  head = ['setting', 'streams', 'hal. loss', 'CENet', 'top-1 (mean ± std)', 'seeds', 'top-5',
          'mean class acc.'] + (['mAP'] if with_map else []) + ['hal. R²', 'train min']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    top1 = _fmt(r['top1']) + ('' if r['top1_std'] is None else f' ± {r["top1_std"]:.1f}')
    cells = [r['name'], r['streams'], r['loss'], r['covariance'], top1, str(r['seeds']),
             _fmt(r['top5']), _fmt(r['mca'])] + ([_fmt(r['map'])] if with_map else []) + \
            [_fmt(r['hal_r2'], 3), _fmt(r['minutes'])]
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines.append('')
  lines.append('Percentages over videos (multi-view averaged); std is the sample std over seeds '
               '("-" with one seed). hal. R² is the mean over streams of the pooled R² of '
               'hallucinated vs ground-truth descriptors on the eval split.')
  if skipped:
    lines.append('')
    lines.append(f'Skipped {len(skipped)} workdir(s): ' + '; '.join(skipped) + '.')
  return '\n'.join(lines) + '\n'


def expand_workdirs(spec):
  """'a,b*,c' -> sorted matches per entry (an entry matching nothing is kept as given)."""
  out = []
  for entry in (e.strip() for e in spec.split(',')):
    if entry:
      matches = sorted(p for p in glob.glob(entry) if os.path.isdir(p))
      out.extend(matches or [entry])
  return out


def build_table(workdirs):
  """Loads, groups and renders; returns (markdown, rows, skipped reasons)."""
  runs, skipped = [], []
  for workdir in workdirs:
    run = load_run(workdir)
    if isinstance(run, str):
      logging.warning('tables: skipping %s (%s).', workdir, run)
      skipped.append(run)
    else:
      runs.append(run)
  rows = [summarise(group) for group in group_runs(runs)]
  return render(rows, skipped), rows, skipped


def main(argv):
  del argv
  if not _WORKDIRS.value:
    raise app.UsageError('--workdirs is required (comma-separated, globs allowed).')
  markdown, rows, _ = build_table(expand_workdirs(_WORKDIRS.value))
  sys.stdout.write(markdown)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      f.write(markdown)
  if not rows:
    raise SystemExit('tables: no finished workdir found (each needs config.json and '
                     'eval_latest.json).')


if __name__ == '__main__':
  app.run(main)
