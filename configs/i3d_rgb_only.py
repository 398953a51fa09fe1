"""RGB-only baseline with the reduced I3D: configs/rgb_only.py with configs/i3d.py's backbone.

The paired baseline of configs/i3d.py (all five streams, uncertainty loss) for the other-backbone
rows of the ablation (README 'Ablation on the objects preset').

Run (one workdir per seed, exported to results/ablation/objects_i3d/):
  HALLUC_ROWS="i3d_rgb_only i3d" HALLUC_SEEDS="0 1 2" \
      HALLUC_RESULTS_DIR=results/ablation/objects_i3d bash run.sh ablation
  or one run: python -m halluc_jax.main --config configs/i3d_rgb_only.py \
      --workdir workdirs/ablation/i3d_rgb_only_s0 --config.seed=0 --config.data.shuffle_seed=0

Result (2026-12-01, seed 0, objects preset, before the trainer evaluated a test split;
results/objects_first_runs/rgb_i3d/): val top-1 44.8%.
"""
import os
import runpy

_HERE = os.path.dirname(os.path.abspath(__file__))


def get_config(arg=None):
  """Returns the ConfigDict of this row: RGB only, reduced I3D (`arg`: a preset of configs/default.py)."""
  c = runpy.run_path(os.path.join(_HERE, 'rgb_only.py'))['get_config'](arg)
  runpy.run_path(os.path.join(_HERE, 'i3d.py'))['use_i3d'](c, arg)
  c.name = 'i3d_rgb_only'  # the row label of halluc_jax.tools.tables
  return c
