"""I3D backbone on CPU: configs/hal_all_unc_grouped.py (the setting of configs/default.py: all
five streams, uncertainty loss, grouped CENet) with a reduced I3D ('mini') instead of the ViViT.

'mini' is the published Inception-v1 I3D at a quarter of its width with one Inception block per
stage (Mixed_3c, Mixed_4f, Mixed_5c; models/variants.py), trained from scratch on 16x64x64 clips.
Its X(rgb) is [B, 1, 256] (Mixed_5c's 2x2x2 map, pooled), read by the I3D stream heads (temporal
conv -> ReLU -> FC -> PN). For the published network use
`--config.model.backbone.variant=full --config.data.num_frames=64 --config.data.crop_size=224`.

Run:
  python -m halluc_jax.main --config configs/i3d.py --workdir workdirs/i3d
  Step time: python -m halluc_jax.bench.train --config configs/i3d.py --real=false --steps 6 \
      --warmup 2

The main job (`bash run.sh`) ran this config until the ViViT got its conv stem (configs/default.py,
which now learns more in the same budget).

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

Earlier single run (2026-12-01, seed 0, objects preset, 576 alternating steps, 2-core CPU shared with other
jobs: 21.7 min wall at load 8-10): val top-1 40.6%, test top-1 43.8% (chance 8.3%); the heads sit
on the train-mean baseline (test R^2 -0.011 to -0.015 per stream). RGB only with this backbone:
val 44.8% (results/objects_first_runs/).
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_ROW = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hal_all_unc_grouped.py')


def use_i3d(c, arg=None):
  """Switches config `c` to the reduced I3D backbone, in place (also configs/i3d_rgb_only.py);
  `arg='tiny'`: a 1/8-width I3D with one Inception block per stage on 8 x 32 x 32 clips."""
  b = c.model.backbone
  b.name = 'i3d'
  b.variant = 'w0.125/111' if arg == 'tiny' else 'mini'
  b.overrides = {}  # default.py's are ViViT fields
  if arg == 'tiny':
    c.data.num_frames = 8  # the stem and pools halve time 3 times
  return c


def get_config(arg=None):
  """Returns the ConfigDict: the default run with the 'mini' I3D backbone (`arg`: a preset of configs/default.py)."""
  c = use_i3d(runpy.run_path(_ROW)['get_config'](arg), arg)
  c.name = 'i3d'  # the row label of halluc_jax.tools.tables
  return c
