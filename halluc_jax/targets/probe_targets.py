r"""How much the extracted auxiliary targets could help: per-stream probes on the ground truth.

A hallucination stream can only add to the classifier what its target descriptor knows about the
class. This command reads the extracted targets (`python -m halluc_jax.targets.extract`) of the train
and eval splits and prints, per stream and for all streams concatenated:

  probe top-1   a ridge-regression linear probe (one-hot least squares on standardised
                features) fitted on train targets, scored on eval targets: the class signal of
                the ground-truth descriptor. Usable as the fusion score w'_i of the paper's Eq. 22 (docs/method.md §3.12)
                (`config.model.fusion.scores`).
  mean cosine   cosine similarity of the train-mean target with each eval target: what a head
                that only learnt the mean scores in the trainer's hallucination-quality metric.
  mean R^2      pooled R^2 of that constant prediction on eval (0 for the eval mean itself).
  class-mean R^2  pooled R^2 on eval of predicting each video's target by the train mean of
                its class: what a head that knew the label, and nothing else about the video,
                would reach. Below 'mean R^2', the target's video-to-video variation is not
                about the class (clutter, noise), so hallucinating it cannot help the classifier
                and a head can beat the train mean only by reading other things in the pixels.

Targets are read as stored (original space, never standardised; config.data.standardize_targets
does not apply here), over the videos that have every stream, once per video. The trainer's
evaluation reports the same train-mean baseline per stream ('train_mean_cosine',
'train_mean_r2' in eval_latest.json), per clip and per stream's own videos.

Rows: every stream, every group of two or more streams (`group:odf` = both detectors), all,
and all with one weight per stream chosen by 5-fold cross-validation on the train split
(`cv_block_weights`; the eval split plays no part in the choice): the probe's way to turn down
streams whose dimensions vary with clutter, which the plain concatenation fits as noise.

Usage:
  python -m halluc_jax.targets.probe_targets --config configs/default.py [--ridge 1.0] [--out_json F.json]
"""
import json

import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

from halluc_jax.evaluation import metrics
from halluc_jax.data import datasets
from halluc_jax.data import aux_targets

_RIDGE = flags.DEFINE_float('ridge', 1.0, 'L2 weight per training example of the probe.')
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0)
_OUT = flags.DEFINE_string('out_json', None, 'Also write the rows as JSON here (e.g. results/).')


def ridge_probe_scores(x_train, y_train, x_eval, num_classes, ridge=1.0, standardize=True):
  """Class scores [M, C] of a one-hot least-squares linear classifier (closed form, with bias).

  Args:
    x_train: float [N, D] features; y_train: int [N] labels.
    x_eval: float [M, D].
    num_classes: number of classes C.
    ridge: L2 weight per training example (lambda = ridge * N), on the weights, not the bias.
    standardize: scale every feature to unit train variance first (off when the caller has
      weighted the features on purpose, as `cv_block_weights` does).
  """
  x_train, x_eval = np.asarray(x_train, np.float64), np.asarray(x_eval, np.float64)
  mu = x_train.mean(0)  # train statistics only
  sd = x_train.std(0) + 1e-8 if standardize else 1.0
  a, b = (x_train - mu) / sd, (x_eval - mu) / sd
  onehot = np.eye(num_classes)[np.asarray(y_train)]
  target_mean = onehot.mean(0)
  # Centred features and targets: the bias is the target mean, and the solve is D x D.
  gram = a.T @ a + ridge * len(a) * np.eye(a.shape[1])
  w = np.linalg.solve(gram, a.T @ (onehot - target_mean))
  return b @ w + target_mean


def ridge_probe_accuracy(x_train, y_train, x_eval, y_eval, num_classes, ridge=1.0,
                         standardize=True):
  """Top-1 on eval of `ridge_probe_scores` (fraction whose arg-max score is the label)."""
  scores = ridge_probe_scores(x_train, y_train, x_eval, num_classes, ridge, standardize)
  return float(np.mean(np.argmax(scores, 1) == np.asarray(y_eval)))


def weighted_blocks(blocks, reference, weights):
  """Streams standardised per dimension with `reference`'s statistics, each times its weight,
  concatenated: [N, sum of dims]."""
  return np.concatenate(
      [(np.asarray(blocks[n], np.float64) - reference[n].mean(0)) / (reference[n].std(0) + 1e-8)
       * weights[n] for n in weights], 1)


def cv_block_weights(blocks, labels, num_classes, ridge=1.0, grid=WEIGHT_GRID, folds=5,
                     sweeps=3, seed=0):
  """One weight per stream for a ridge probe on all streams, chosen on the training split only.

  A stream whose dimensions vary with clutter rather than the class adds noise dimensions that
  the concatenated probe, with a few hundred videos, fits anyway; a weight per stream (multiple-
  penalty ridge: weight w is a ridge of ridge / w^2 on that block) lets the probe turn such a
  stream down. Coordinate ascent over `grid`, from all weights 1, on the mean top-1 of a
  `folds`-fold split of the training videos; ties keep the earlier weights.

  Args:
    blocks: {stream: [N, d]} training targets.
    labels: int [N].
    num_classes: C.
    ridge, grid, folds, sweeps, seed: probe ridge, candidate weights, CV folds, passes over the
      streams, fold assignment seed.

  Returns:
    ({stream: weight}, cross-validated top-1 of those weights).
  """
  names, labels = list(blocks), np.asarray(labels)
  fold = np.random.default_rng(seed).permutation(np.arange(len(labels)) % folds)

  def cv_accuracy(weights):
    accs = []
    for k in range(folds):
      fit, held = fold != k, fold == k
      part = {n: np.asarray(blocks[n])[fit] for n in names}
      rest = {n: np.asarray(blocks[n])[held] for n in names}
      accs.append(ridge_probe_accuracy(weighted_blocks(part, part, weights), labels[fit],
                                       weighted_blocks(rest, part, weights), labels[held],
                                       num_classes, ridge, standardize=False))
    return float(np.mean(accs))

  weights = {n: 1.0 for n in names}
  best = cv_accuracy(weights)
  for _ in range(sweeps):
    changed = False
    for name in names:
      for value in grid:
        trial = dict(weights, **{name: float(value)})
        if value == weights[name] or not any(trial.values()):
          continue
        acc = cv_accuracy(trial)
        if acc > best + 1e-12:
          best, weights, changed = acc, trial, True
    if not changed:
      break
  return weights, best


def mean_predictor_scores(t_train, t_eval):
  """(mean cosine, pooled R^2) on eval of always predicting the train-mean target."""
  pred = np.broadcast_to(np.asarray(t_train, np.float64).mean(0), np.shape(t_eval))
  return (float(metrics.cosine_similarity(pred, t_eval).mean()),
          metrics.r2_score(pred, t_eval))


def class_mean_r2(t_train, y_train, t_eval, y_eval, num_classes):
  """Pooled R^2 on eval of the per-class train-mean target (the overall mean for a class with
  no training videos)."""
  t_train = np.asarray(t_train, np.float64)
  y_train, y_eval = np.asarray(y_train), np.asarray(y_eval)
  overall = t_train.mean(0)
  means = np.stack([t_train[y_train == c].mean(0) if np.any(y_train == c) else overall
                    for c in range(num_classes)])
  return metrics.r2_score(means[y_eval], np.asarray(t_eval, np.float64))


def load_split(config, split, store):
  """Targets of the videos of one split that have every stream: ({name: [N, d]}, labels [N])."""
  records = datasets.read(config.data, split).records
  rows, labels = {k: [] for k in store.dims}, []
  for record in records:
    targets, masks, _ = store.lookup(record.video_id)
    if all(masks[k] > 0 for k in store.dims):
      for k in store.dims:
        rows[k].append(targets[k])
      labels.append(record.label)
  return {k: np.stack(v) for k, v in rows.items()}, np.asarray(labels), len(records)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = flags.FLAGS.config
  store = aux_targets.AuxTargetStore(config.data.aux_dir)
  train, y_train, n_train = load_split(config, config.data.train_split, store)
  evals, y_eval, n_eval = load_split(config, config.data.eval_split, store)
  groups = {k: v.get('group', '') for k, v in store.manifest['streams'].items()}
  c = config.data.num_classes
  print(f'{config.data.aux_dir}: {len(y_train)}/{n_train} train and {len(y_eval)}/{n_eval} '
        f'eval videos with every stream; {c} classes (chance top-1 {100 / c:.1f}%)')
  print('| stream | group | dim | probe top-1 (%) | mean cosine | mean R^2 | class-mean R^2 |')
  print('|---|---|---|---|---|---|---|')
  rows = []
  for name, members in probe_sets(list(store.dims), groups):
    tr = np.concatenate([train[k] for k in members], 1)
    ev = np.concatenate([evals[k] for k in members], 1)
    acc = ridge_probe_accuracy(tr, y_train, ev, y_eval, c, _RIDGE.value)
    cosine, r2 = mean_predictor_scores(tr, ev)
    r2_class = class_mean_r2(tr, y_train, ev, y_eval, c)
    group = groups.get(name, '-') if len(members) == 1 else '-'
    print(f'| {name} | {group} | {tr.shape[1]} | {100 * acc:.1f} | {cosine:.3f} | {r2:.3f} | '
          f'{r2_class:.3f} |')
    rows.append({'name': name, 'streams': members, 'dim': int(tr.shape[1]), 'probe_top1': acc,
                 'mean_cosine': cosine, 'mean_r2': r2, 'class_mean_r2': r2_class})
  if len(store.dims) > 1:  # all streams, one weight per stream chosen by CV on train
    weights, cv_top1 = cv_block_weights(train, y_train, c, _RIDGE.value)
    acc = ridge_probe_accuracy(weighted_blocks(train, train, weights), y_train,
                               weighted_blocks(evals, train, weights), y_eval, c, _RIDGE.value,
                               standardize=False)
    shown = ', '.join(f'{k} {v:g}' for k, v in weights.items())
    print(f'| all, CV stream weights ({shown}; train CV {100 * cv_top1:.1f}) | - | '
          f'{sum(train[k].shape[1] for k in store.dims)} | {100 * acc:.1f} | - | - | - |')
    rows.append({'name': 'all:cv_weights', 'streams': list(store.dims), 'weights': weights,
                 'train_cv_top1': cv_top1, 'probe_top1': acc})
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump({'aux_dir': config.data.aux_dir, 'train_split': config.data.train_split,
                 'eval_split': config.data.eval_split, 'num_train': int(len(y_train)),
                 'num_eval': int(len(y_eval)), 'num_classes': int(c), 'ridge': _RIDGE.value,
                 'rows': rows}, f, indent=1)


def probe_sets(names, groups):
  """(row name, streams) to probe: each stream, each group of 2+ streams ('group:<g>'), all."""
  sets = [(n, [n]) for n in names]
  for group in sorted({g for g in groups.values() if g}):
    members = [n for n in names if groups.get(n) == group]
    if len(members) > 1:
      sets.append((f'group:{group}', members))
  return sets + [('all', list(names))]


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', None, 'Experiment config file (.py).',
                                  lock_config=True)
  flags.mark_flags_as_required(['config'])
  app.run(main)
