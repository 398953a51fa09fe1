"""RGB-only baseline with the reduced I3D: configs/rgb_only.py with configs/i3d.py's backbone.

The paired baseline of configs/i3d.py (all five streams, uncertainty loss) for the other-backbone
rows of the ablation (README 'Ablation on the objects preset').

Run (one workdir per seed, exported to results/ablation/objects_i3d/):
  HALLUC_ROWS="i3d_rgb_only i3d" HALLUC_SEEDS="0 1 2" \
      HALLUC_RESULTS_DIR=results/ablation/objects_i3d bash run.sh ablation
  or one run: python -m halluc_jax.main --config configs/i3d_rgb_only.py \
      --workdir workdirs/ablation/i3d_rgb_only_s0 --config.seed=0 --config.data.shuffle_seed=0

Result on the `objects` preset (I3D 'mini', seeds 0-2, the main job's recipe, 2-core CPU),
rendered from results/ablation/objects_i3d/ by `python -m halluc_jax.tools.tables --results
'results/ablation/objects_i3d/*.json' --baseline i3d_rgb_only --update configs/i3d.py,configs/i3d_rgb_only.py,README.md --marker objects_i3d`
(README 'Other backbone and hard preset'):

<!-- table:objects_i3d -->

| setting | streams | hal. loss | CENet | val top-1 | test top-1 | seeds | test top-5 | test mean class acc. | hal. R² (test) | > train mean | train min | Δ test top-1 vs baseline | pairs | p (paired t) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| i3d_rgb_only | RGB only (baseline) | - | - | 50.3 ± 5.7 | 49.7 ± 1.6 | 3 | 99.0 | 49.7 | - | - | 9.6 | ref. | - | - |
| i3d | OFF + ODF + SDF | Uncert. | grouped | 45.1 ± 3.7 | 43.4 ± 4.2 | 3 | 97.9 | 43.4 | 0.107 | 9/15 | 15.4 | -6.3 ± 5.8 | 3 | 0.203 |

val / test top-1: video top-1 (%, multi-view averaged) on the validation split and on the held-out test split, mean ± sample std over seeds ("-" std with one seed). Runs select on val only: no row, setting or checkpoint was chosen by its test result. seeds: runs in the row. test top-5, mean class acc.: means over seeds, test split. hal. R²: pooled R² of hallucinated vs ground-truth descriptors on test, mean over streams and seeds; > train mean: (seed, stream) pairs whose R² and cosine both beat the constant train-mean predictor, of those where it is known. train min: wall minutes per run, mean. Δ test top-1 vs baseline (ref.): mean ± sample std over paired seeds of (row − baseline) test top-1 in points, runs paired by config.seed (same seed, same data order); pairs: seeds with a test result in both rows; p: paired t-test (scipy.stats.ttest_rel), two-sided, uncorrected for the number of rows, "-" with fewer than 2 pairs. "-" elsewhere: no such result (e.g. runs from before the test split).

<!-- /table:objects_i3d -->

Earlier (2026-12-01, seed 0, before the trainer evaluated a test split;
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
