"""RGB-only baseline: the backbone + HAF + PredNet, no hallucination streams.

Ablation on the embedded dataset, in the spirit of the "-" (plain backbone) row of the paper's
tables (SPEC 8.3).

Run (one workdir per seed; protocol in README 'Ablation on the embedded dataset'):
  python -m halluc_jax.main --config configs/rgb_only.py \
      --workdir workdirs/ablation/rgb_only_s0 \
      --config.seed=0 --config.data.shuffle_seed=0

Result (2026-11-26, seeds 0-2, H200 box, `bash run.sh ablation` protocol): val top-1
7.3 +- 2.8% (chance 8.3%); ~5 min per run. At chance, like every row:
see README 'Ablation on the embedded dataset' for why.
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config():
  """Returns the ConfigDict of this ablation row."""
  c = runpy.run_path(_DEFAULT)['get_config']()
  c.name = 'rgb_only'  # the row label of halluc_jax.tables
  c.data.aux_dir = ''  # no auxiliary targets: the model has no hallucination streams
  # Only the classification loss is left; one joint update per step instead of an empty
  # hallucination pass followed by the classification pass (same objective, half the compute).
  c.loss.update_scheme = 'joint'
  c.loss.hallucination = 'mse'  # unused without streams; stated so the table reads '-'
  return c
