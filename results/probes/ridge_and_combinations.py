"""All-stream probe against the ridge weight, block scaling, and odf_shape + one other stream.

Run from the repository root after `bash run.sh` (targets in data/synthetic_objects/targets):
  PYTHONPATH=. python results/probes/ridge_and_combinations.py > results/probes/ridge_and_combinations.txt
Ridge probes as `python -m halluc_jax.targets.probe_targets` computes them (train -> val).
"""
import runpy

import numpy as np

from halluc_jax.data import aux_targets
from halluc_jax.targets import probe_targets as pt

c = runpy.run_path('configs/default.py')['get_config']()
store = aux_targets.AuxTargetStore(c.data.aux_dir)
tr, ytr, _ = pt.load_split(c, c.data.train_split, store)
ev, yev, _ = pt.load_split(c, c.data.eval_split, store)
names, k = list(store.dims), c.data.num_classes
print(f'{len(ytr)} train / {len(yev)} val videos; streams {names}; chance {100 / k:.1f}%')
cat = lambda d, ks: np.concatenate([d[n] for n in ks], 1)
for r in (0.01, 0.1, 1, 3, 10, 30, 100, 1000):
  acc = pt.ridge_probe_accuracy(cat(tr, names), ytr, cat(ev, names), yev, k, r)
  print(f'all streams, ridge {r:g}: {100 * acc:.1f}%')


def blocks(d):  # each stream standardised, then scaled to unit total variance
  return np.concatenate([(d[n] - tr[n].mean(0)) / (tr[n].std(0) + 1e-8) / np.sqrt(d[n].shape[1])
                         for n in names], 1)


for r in (0.001, 0.01, 0.1, 1):
  acc = pt.ridge_probe_accuracy(blocks(tr), ytr, blocks(ev), yev, k, r)
  print(f'all streams, equal-variance blocks, ridge {r:g}: {100 * acc:.1f}%')
for other in [n for n in names if n != 'odf_shape']:
  ks = ['odf_shape', other]
  accs = [pt.ridge_probe_accuracy(cat(tr, ks), ytr, cat(ev, ks), yev, k, r) for r in (0.3, 1, 3)]
  print(f'odf_shape + {other}, ridge 0.3 / 1 / 3: ' + ' / '.join(f'{100 * a:.1f}' for a in accs) + '%')
