"""Rows of the ablation table: what setting a run is, grouping over seeds, per-row figures.

`summarise` turns the runs of one setting (configs equal up to SEED_KEYS) into a dict of
numbers: val and test split scores as means over seeds, hallucination quality on test against
the train-mean predictor, wall time, and the paired comparison with a baseline setting (test
top-1, runs paired by `config.seed`, paired t-test). `tables.py` renders the rows.
"""
import json
import logging
import warnings

import numpy as np

from halluc_jax.evaluation import results_io
from halluc_jax.evaluation.results_io import get as _get

# Keys that only change the random draw of a run, not the setting it measures.
SEED_KEYS = (('seed',), ('data', 'shuffle_seed'))
GROUP_ORDER = ('off', 'odf', 'sdf')  # how the paper lists streams: BFO first, then ODF, SDF
BASELINE_STREAMS = 'RGB only (baseline)'


# Keys added to configs/default.py after committed runs: (path, the value a config without it ran
# with, a predicate on the config saying when the key changes nothing). A run that lacks the key
# is grouped as if it had that value; where the key is inert it is dropped from every run.
LATER_KEYS = (
    (('loss', 'constant_coords'), 'model',
     lambda config: _get(config, ('loss', 'hallucination'), 'mse') != 'uncertainty'),
    (('model', 'streams', 'use_groups'), [], lambda config: False),  # [] = no filter
    (('train', 'compilation_cache_dir'), '', lambda config: True),  # speed only: never a row key
    (('train', 'cpu_devices'), 1, lambda config: True),  # speed only (float reduction order)
    (('model', 'backbone', 'gelu'), 'tanh', lambda config: False),
    (('optim', 'layer_decay'), 1.0, lambda config: False),
    (('train', 'ema_decay'), 0.0, lambda config: False),
    (('data', 'feature_cache'), '', lambda config: False),
    (('data', 'rgb_conversion'), 'swscale', lambda config: False),
    (('optim', 'frozen_groups'), [], lambda config: False),
    (('augment',), {'mixup_alpha': 0.0, 'cutmix_alpha': 0.0, 'mix_switch_prob': 0.5,
                    'mix_prob': 1.0, 'random_erase_prob': 0.0,
                    'random_erase_area': [0.02, 1.0 / 3.0], 'random_erase_aspect': [0.3, 1.0 / 0.3],
                    'randaugment_ops': 0, 'randaugment_magnitude': 7.0, 'randaugment_mstd': 0.5,
                    'repeated_aug': 1},
     lambda config: not _augmenting(config)),
    (('init_from',), {'path': '', 'format': 'videomae', 'groups': 'backbone'},
     lambda config: not _get(config, ('init_from', 'path'), '')),
    # Image-ViT inflation and the table's source grid (after the init_from block): no effect
    # for the other formats / at the inferred grid.
    (('init_from', 'inflate'), 'central',
     lambda config: _get(config, ('init_from', 'format'), 'videomae') not in
     ('timm_vit', 'big_vision_vit')),
    (('init_from', 'source_grid'), '',
     lambda config: not _get(config, ('init_from', 'source_grid'), '')),
    # Dataset readers (data/datasets): every committed run read a CSV; the format's settings
    # change nothing for a format that does not read them.
    (('data', 'format'), 'csv', lambda config: False),
    # A TFDS pack (data/tfds_builder.py) holds the same videos, re-encoded or not: which pack
    # is a row key, where it lies is not.
    (('data', 'source'), '', lambda config: False),
    (('data', 'tfds_data_dir'), '', lambda config: True),
    (('data', 'split_index'), 1,
     lambda config: _get(config, ('data', 'format'), 'csv') not in ('hmdb51', 'ucf101',
                                                                  'mpii_cooking')),
    (('data', 'protocol'), '',
     lambda config: _get(config, ('data', 'format'), 'csv') not in ('toyota_smarthome', 'yupp',
                                                                  'mpii_cooking')),
    (('data', 'label_field'), 'verb',
     lambda config: _get(config, ('data', 'format'), 'csv') != 'epic_kitchens55'),
    (('data', 'val_participants'), [],
     lambda config: _get(config, ('data', 'format'), 'csv') != 'epic_kitchens55'),
    # The IDT streams' extraction settings: what a run trains on is in its manifest, not here.
    (('extract', 'idt'), {}, lambda config: True),
    (('extract', 'stream', 'bow_idt'), {}, lambda config: True),
    (('extract', 'stream', 'fv1_idt'), {}, lambda config: True),
    (('extract', 'stream', 'fv2_idt'), {}, lambda config: True),
)


def _augmenting(config):
  a = _get(config, ('augment',), {}) or {}
  return (any(float(a.get(k, 0.0)) > 0 for k in ('mixup_alpha', 'cutmix_alpha', 'random_erase_prob',
                                                 'randaugment_ops'))
          or int(a.get('repeated_aug', 1)) > 1)


def _without_seeds(config):
  """The run's config as a row key: seed keys dropped, LATER_KEYS filled in or dropped."""
  config = json.loads(json.dumps(config))  # deep copy
  for path in SEED_KEYS:
    parent = _get(config, path[:-1]) if len(path) > 1 else config
    if isinstance(parent, dict):
      parent.pop(path[-1], None)
  for path, old_value, inert in LATER_KEYS:
    parent = _get(config, path[:-1])
    if not isinstance(parent, dict):
      continue
    if inert(config):
      parent.pop(path[-1], None)
    else:
      parent.setdefault(path[-1], old_value)
  return config


def describe_setting(config):
  """(streams, loss, covariance) of a run, read from its config dict.

  Streams: `model.streams.use_groups` (group names), else `model.streams.use` (stream names),
  else every stream of the manifest; no auxiliary targets (`data.aux_dir` empty) is the
  RGB-only baseline. Loss: `loss.hallucination`; covariance: `model.cenet.structure`.
  """
  if not _get(config, ('data', 'aux_dir'), ''):
    return BASELINE_STREAMS, '-', '-'
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


def group_runs(runs):
  """Groups runs whose configs are equal up to the seed; keeps first-seen order."""
  groups = {}
  for run in runs:
    key = json.dumps(_without_seeds(run['config']), sort_keys=True)
    groups.setdefault(key, []).append(run)
  return list(groups.values())


def _values(runs, split, key):
  return [r[split][key] for r in runs if r.get(split) and r[split].get(key) is not None]


def _pct(values):
  return 100.0 * float(np.mean(values)) if values else None


def _pct_std(values):
  return 100.0 * float(np.std(values, ddof=1)) if len(values) > 1 else None


def _stream_quality(runs, split):
  return [q for r in runs if r.get(split) for q in (r[split].get('hallucination') or {}).values()]


def _beats_train_mean(q):
  """Whether a stream beats the train-mean predictor in R² and cosine; None if unknown."""
  keys = ('r2', 'train_mean_r2', 'cosine', 'train_mean_cosine')
  if any(q.get(k) is None for k in keys):
    return None
  return q['r2'] > q['train_mean_r2'] and q['cosine'] > q['train_mean_cosine']


def _mean_r2(quality):
  r2 = [q['r2'] for q in quality if q.get('r2') is not None]
  return float(np.mean(r2)) if r2 else None


def _split_scores(runs, split, prefix):
  """{prefix + 'top1', ... 'hal_r2'}: the means over seeds of one split's figures."""
  top1 = _values(runs, split, 'top1')
  return {f'{prefix}top1': _pct(top1), f'{prefix}top1_std': _pct_std(top1),
          f'{prefix}top5': _pct(_values(runs, split, 'top5')),
          f'{prefix}mca': _pct(_values(runs, split, 'mean_class_accuracy')),
          f'{prefix}map': _pct(_values(runs, split, 'mAP')),
          f'{prefix}hal_r2': _mean_r2(_stream_quality(runs, split))}


def top1_by_seed(runs):
  """{config.seed: test top-1 in %} of the runs with a test result (first run of a seed wins)."""
  out = {}
  for run in runs:
    top1 = _get(run, ('test', 'top1'))
    if top1 is None:
      continue
    seed = run['config'].get('seed')
    if seed in out:
      logging.warning('tables: two runs of %s with seed %s; pairing the first.',
                      results_io.run_name(run), seed)
      continue
    out[seed] = 100.0 * top1
  return out


def paired_stats(values, baseline_values):
  """{'mean', 'std', 'pairs', 'p'} of values[i] - baseline_values[i] (paired t-test p)."""
  diffs = np.asarray(values, np.float64) - np.asarray(baseline_values, np.float64)
  out = {'mean': float(diffs.mean()) if len(diffs) else None, 'std': None,
         'pairs': len(diffs), 'p': None}
  if len(diffs) >= 2:
    from scipy import stats  # pylint: disable=g-import-not-at-top  # only tables need scipy
    out['std'] = float(diffs.std(ddof=1))
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)  # all differences equal: p is nan
      p = float(stats.ttest_rel(values, baseline_values).pvalue)
    out['p'] = p if np.isfinite(p) else None
  return out


def paired_comparison(runs, baseline_runs):
  """paired_stats of test top-1 (points) between the runs and baseline runs of equal seed."""
  mine, base = top1_by_seed(runs), top1_by_seed(baseline_runs)
  seeds = sorted(set(mine) & set(base), key=str)
  return paired_stats([mine[s] for s in seeds], [base[s] for s in seeds])


def summarise(runs, baseline_runs=None):
  """One table row (a dict of numbers) from the runs of one setting.

  Args:
    runs: run dicts (results_io) of one setting.
    baseline_runs: the runs of the baseline setting (`runs` itself for the baseline row), or
      None where there is none.

  Returns:
    Unprefixed scores (top1, top1_std, top5, mca, map, hal_r2) are the val split's, `test_`
    ones the test split's, in % (R² as is); 'beats_train_mean' is (streams beating it, streams
    where it is known) over seeds; 'paired' is `paired_comparison` with the baseline (None
    for the baseline row or without one).
  """
  seconds = [r['seconds'] for r in runs if r.get('seconds') is not None]
  beats = [_beats_train_mean(q) for q in _stream_quality(runs, 'test')]
  streams, loss, cov = describe_setting(runs[0]['config'])
  return {
      'name': results_io.run_name(runs[0]), 'streams': streams, 'loss': loss,
      'covariance': cov, 'seeds': len(runs), **_split_scores(runs, 'eval', ''),
      **_split_scores(runs, 'test', 'test_'),
      'beats_train_mean': (sum(b is True for b in beats), sum(b is not None for b in beats)),
      'minutes': float(np.mean(seconds)) / 60.0 if seconds else None,
      'is_baseline': baseline_runs is runs,
      'paired': None if baseline_runs is None or baseline_runs is runs
                else paired_comparison(runs, baseline_runs),
  }


def find_baseline(groups, name=None):
  """Index of the baseline group: the one named `name`, else the RGB-only one; None if none."""
  if name:
    found = [i for i, g in enumerate(groups) if results_io.run_name(g[0]) == name]
    if not found:
      names = ', '.join(results_io.run_name(g[0]) for g in groups)
      raise ValueError(f'--baseline {name}: no such setting among the runs ({names}).')
  else:
    found = [i for i, g in enumerate(groups)
             if describe_setting(g[0]['config'])[0] == BASELINE_STREAMS]
  if len(found) > 1:
    logging.warning('tables: %d baseline-like settings; comparing with the first.', len(found))
  return found[0] if found else None
