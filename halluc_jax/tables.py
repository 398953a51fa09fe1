r"""Renders the paper-style ablation table (SPEC 8.3) from finished workdirs.

  python -m halluc_jax.tables --workdirs 'workdirs/rgb_only_s*,workdirs/hal_*' --out table.md

Each workdir must hold `config.json` (written by the trainer) and `eval_latest.json` (written
by `halluc_jax.evaluate`, under `eval/`); wall time comes from `timing.json` or the trainer's
`summary.json` when they hold one of TIMING_KEYS. Runs whose configs differ only in the seed
are one row: top-1 is reported as mean +- sample std over seeds. A workdir without those
files is skipped, logged and listed under the table.
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

  Streams: `model.streams.use_groups` (group names), else `model.streams.use` (stream names),
  else every stream of the manifest; no auxiliary targets (`data.aux_dir` empty) is the
  RGB-only baseline. Loss: `loss.hallucination`; covariance: `model.cenet.structure`.
  """
  if not _get(config, ('data', 'aux_dir'), ''):
    return 'RGB only (baseline)', '-', '-'
  groups = list(_get(config, ('model', 'streams', 'use_groups')) or ())
  names = list(_get(config, ('model', 'streams', 'use')) or ())
  if groups:
    ordered = sorted(groups, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    streams = ' + '.join(g.upper() for g in ordered)
  elif names:
    streams = ' + '.join(sorted(names))
  else:
    streams = 'all streams'
  loss = str(_get(config, ('loss', 'hallucination'), 'mse'))
  if loss == 'mse':
    robust = _get(config, ('loss', 'robust'), 'none')
    return streams, 'MSE' if robust in (None, 'none') else f'MSE ({robust})', '-'
  return streams, 'Uncert.', str(_get(config, ('model', 'cenet', 'structure'), '?'))


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _wall_seconds(workdir):
  """Training wall time from timing.json, else summary.json (the trainer's), else None."""
  for name in ('timing.json', 'summary.json'):
    path = os.path.join(workdir, name)
    if os.path.isfile(path):
      timing = _read_json(path)
      for key in TIMING_KEYS:
        if isinstance(timing.get(key), (int, float)):
          return float(timing[key])
  return None


def load_run(workdir):
  """{'workdir', 'config', 'eval', 'seconds'} of one finished run, or a reason string.

  The eval result is `<workdir>/eval/eval_latest.json` (where train.py points evaluate) or
  `<workdir>/eval_latest.json`.
  """
  config_path = os.path.join(workdir, 'config.json')
  eval_paths = [os.path.join(workdir, 'eval', 'eval_latest.json'),
                os.path.join(workdir, 'eval_latest.json')]
  if not os.path.isfile(config_path):
    return f'{config_path} is missing'
  eval_path = next((p for p in eval_paths if os.path.isfile(p)), None)
  if eval_path is None:
    return f'{eval_paths[0]} is missing'
  try:
    return {'workdir': workdir, 'config': _read_json(config_path),
            'eval': _read_json(eval_path), 'seconds': _wall_seconds(workdir)}
  except (OSError, ValueError) as e:
    return f'unreadable JSON in {workdir}: {e}'


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
