"""All streams, uncertainty loss with a diagonal precision factor (docs/method.md §3.10).

Ablation on the embedded dataset, in the spirit of the per-dimension (Kendall-Gal-like) special
case of the "Uncert." columns of docs/method.md §8.3.

Run (one workdir per seed; protocol in README 'Ablation on the embedded dataset'):
  python -m halluc_jax.main --config configs/hal_all_unc_diag.py \
      --workdir workdirs/ablation/hal_all_unc_diag_s0 \
      --config.seed=0 --config.data.shuffle_seed=0

Result (2026-11-26, seeds 0-2, H200 box, `bash run.sh ablation` protocol): val top-1
10.8 +- 2.6% (chance 8.3%), hallucination R^2 -0.75; ~5 min per run. At chance, like every row:
see README 'Ablation on the embedded dataset' for why.
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config():
  """Returns the ConfigDict of this ablation row."""
  c = runpy.run_path(_DEFAULT)['get_config']()
  c.name = 'hal_all_unc_diag'  # the row label of halluc_jax.tables
  c.model.streams.use_groups = ('off', 'odf', 'sdf')
  c.loss.hallucination = 'uncertainty'
  c.model.cenet.structure = 'diag'
  return c
