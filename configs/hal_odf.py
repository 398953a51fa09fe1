"""+ ODF: hallucinate the object-detection-feature streams only, MSE loss.

Ablation on the embedded dataset, in the spirit of the "+ODF MSE" columns of docs/method.md §8.3 Tables
4-5.

Run (one workdir per seed; protocol in README 'Ablation on the embedded dataset'):
  python -m halluc_jax.main --config configs/hal_odf.py \
      --workdir workdirs/ablation/hal_odf_s0 \
      --config.seed=0 --config.data.shuffle_seed=0

Result (2026-11-26, seeds 0-2, H200 box, `bash run.sh ablation` protocol): val top-1
9.0 +- 1.2% (chance 8.3%), hallucination R^2 -0.38; ~5 min per run. At chance, like every row:
see README 'Ablation on the embedded dataset' for why.
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config():
  """Returns the ConfigDict of this ablation row."""
  c = runpy.run_path(_DEFAULT)['get_config']()
  c.name = 'hal_odf'  # the row label of halluc_jax.tables
  c.model.streams.use_groups = ('odf',)
  c.loss.hallucination = 'mse'
  return c
