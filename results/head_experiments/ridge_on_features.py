"""Can any linear head beat the train mean? Ridge from a trained run's backbone features X.

Restores a workdir's newest checkpoint, runs the eval views of the train and val splits through
the model (centre crops, `data.eval_clips` clips per video), and per stream fits a ridge
regression from standardised X (train-split statistics) to the standardised target, over a grid
of ridge weights; prints val R^2 (pooled over dims, standardised space) of the ridge, of the
train-mean predictor and of the run's own heads. Run from the repository root:

  python results/head_experiments/ridge_on_features.py --workdir workdirs/x_bn_nobb \
      [--config.x=y ...the run's overrides: the config is read from <workdir>/config.json]
"""
import json
import os
import sys

import jax
import ml_collections
import numpy as np

from halluc_jax import setup as setup_lib
from halluc_jax import checkpointing
from halluc_jax.data import pipeline


def r2(pred, target):
  return 1.0 - np.sum((target - pred) ** 2) / np.sum((target - target.mean(0)) ** 2)


def collect(config, setup, state, split):
  it = pipeline.make_eval_dataset(config, 0, 1, split=split)
  fn = setup.predict_fn(state)
  feats, aux, hal, masks = [], {}, {}, {}
  for batch in it:
    out = jax.device_get(fn(batch))
    keep = batch['valid'] > 0
    feats.append(np.asarray(out['features'])[keep].reshape(keep.sum(), -1))
    for k in batch['aux']:
      aux.setdefault(k, []).append(batch['aux'][k][keep])
      masks.setdefault(k, []).append(batch['aux_mask'][k][keep])
      hal.setdefault(k, []).append(np.asarray(out['hallucinated'][k])[keep])
  it.close()
  cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}  # pylint: disable=unnecessary-lambda-assignment
  return np.concatenate(feats), cat(aux), cat(hal), cat(masks)


def main():
  workdir = os.path.abspath(sys.argv[sys.argv.index('--workdir') + 1])
  with open(os.path.join(workdir, 'config.json')) as f:
    config = ml_collections.ConfigDict(json.load(f))
  setup = setup_lib.Setup(config)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), config.checkpoint)
  state = ckpt.restore(setup.abstract_state)
  ckpt.close()
  with setup.context():
    x_tr, t_tr, _, m_tr = collect(config, setup, state, config.data.train_split)
    x_ev, t_ev, h_ev, m_ev = collect(config, setup, state, config.data.eval_split)
  mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
  a, b = (x_tr - mu) / sd, (x_ev - mu) / sd
  print(f'X: {x_tr.shape[1]} dims; per-dim std over train clips {x_tr.std(0).mean():.4f} around '
        f'mean |x| {np.abs(x_tr.mean(0)).mean():.3f}; {len(a)} train / {len(b)} val views')
  ridges = (1, 10, 100, 1000, 10000)
  print('| stream | train mean | heads | ' + ' | '.join(f'ridge {r}' for r in ridges) + ' |')
  print('|---|---|---|' + '---|' * len(ridges))
  for k in sorted(t_tr):
    tr, ev = m_tr[k] > 0, m_ev[k] > 0
    y, z = t_tr[k][tr], t_ev[k][ev]
    ym = y.mean(0)
    row = [r2(np.broadcast_to(ym, z.shape), z), r2(h_ev[k][ev], z)]
    at, bt = a[tr], b[ev]
    for lam in ridges:
      w = np.linalg.solve(at.T @ at + lam * np.eye(at.shape[1]), at.T @ (y - ym))
      row.append(r2(bt @ w + ym, z))
    print(f'| {k} | ' + ' | '.join(f'{v:+.3f}' for v in row) + ' |')


if __name__ == '__main__':
  main()
