"""+ ODF: hallucinate the object-detection-feature streams only, MSE loss.

Ablation on the embedded dataset, in the spirit of the "+ODF MSE" columns of SPEC 8.3 Tables
4-5.

Run (one workdir per seed; protocol in README 'Ablation on the embedded dataset'):
  python -m halluc_jax.main --config configs/hal_odf.py \
      --workdir workdirs/hal_odf_s0 --config.seed=0

Result: not yet measured.
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
