"""RGB-only baseline: the backbone + HAF + PredNet, no hallucination streams.

Ablation on the embedded dataset, in the spirit of the "-" (plain backbone) row of the paper's
tables (docs/method.md §8.3).

Run (one workdir per seed; protocol in README 'Ablation on the embedded dataset'):
  python -m halluc_jax.main --config configs/rgb_only.py \
      --workdir workdirs/ablation/rgb_only_s0 \
      --config.seed=0 --config.data.shuffle_seed=0

Result on the `objects` preset (ViViT + conv stem, seeds 0-4, the main job's recipe, 2-core
CPU), rendered from results/ablation/objects/ by `python -m halluc_jax.tools.tables --results
'results/ablation/objects/*.json' --baseline rgb_only --update configs/rgb_only.py --marker objects`
(README 'Ablation on the objects preset'):

<!-- table:objects -->

| setting | streams | hal. loss | CENet | val top-1 | test top-1 | seeds | test top-5 | test mean class acc. | hal. R² (test) | > train mean | train min | Δ test top-1 vs baseline | pairs | p (paired t) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| hal_all_mse | OFF + ODF + SDF | MSE | - | 51.0 ± 3.5 | 52.5 ± 4.5 | 5 | 97.1 | 52.5 | 0.102 | 20/25 | 8.0 | +0.8 ± 15.2 | 5 | 0.908 |
| hal_all_unc_diag | OFF + ODF + SDF | Uncert. | diag | 51.2 ± 5.1 | 50.0 ± 5.1 | 5 | 97.9 | 50.0 | 0.105 | 20/25 | 10.3 | -1.7 ± 15.4 | 5 | 0.821 |
| hal_all_unc_grouped_headnorm | OFF + ODF + SDF | Uncert. | grouped | 45.8 ± 10.7 | 46.7 ± 2.7 | 5 | 97.3 | 46.7 | -0.006 | 10/25 | 7.7 | -5.0 ± 11.6 | 5 | 0.389 |
| hal_all_unc_grouped_literal | OFF + ODF + SDF | Uncert. | grouped | 54.4 ± 7.8 | 50.2 ± 4.6 | 5 | 98.1 | 50.2 | -0.013 | 7/25 | 9.5 | -1.5 ± 14.5 | 5 | 0.833 |
| hal_all_unc_grouped | OFF + ODF + SDF | Uncert. | grouped | 55.2 ± 6.2 | 50.4 ± 1.7 | 5 | 97.1 | 50.4 | 0.101 | 19/25 | 13.4 | -1.2 ± 12.3 | 5 | 0.832 |
| hal_odf | ODF | MSE | - | 52.9 ± 3.0 | 48.8 ± 5.7 | 5 | 96.7 | 48.8 | 0.132 | 7/10 | 10.1 | -2.9 ± 15.3 | 5 | 0.692 |
| hal_off | OFF | MSE | - | 51.2 ± 2.9 | 49.6 ± 6.0 | 5 | 97.7 | 49.6 | -0.016 | 0/5 | 14.1 | -2.1 ± 11.3 | 5 | 0.702 |
| hal_sdf | SDF | MSE | - | 53.8 ± 8.0 | 49.4 ± 2.8 | 5 | 97.1 | 49.4 | 0.129 | 9/10 | 14.4 | -2.3 ± 10.0 | 5 | 0.635 |
| rgb_only | RGB only (baseline) | - | - | 49.4 ± 9.6 | 51.7 ± 10.7 | 5 | 96.5 | 51.7 | - | - | 7.5 | ref. | - | - |

val / test top-1: video top-1 (%, multi-view averaged) on the validation split and on the held-out test split, mean ± sample std over seeds ("-" std with one seed). Runs select on val only: no row, setting or checkpoint was chosen by its test result. seeds: runs in the row. test top-5, mean class acc.: means over seeds, test split. hal. R²: pooled R² of hallucinated vs ground-truth descriptors on test, mean over streams and seeds; > train mean: (seed, stream) pairs whose R² and cosine both beat the constant train-mean predictor, of those where it is known. train min: wall minutes per run, mean. Δ test top-1 vs baseline (ref.): mean ± sample std over paired seeds of (row − baseline) test top-1 in points, runs paired by config.seed (same seed, same data order); pairs: seeds with a test result in both rows; p: paired t-test (scipy.stats.ttest_rel), two-sided, uncorrected for the number of rows, "-" with fewer than 2 pairs. "-" elsewhere: no such result (e.g. runs from before the test split).

<!-- /table:objects -->

On the hard `motion` preset (ViViT + conv stem, seeds 0-2; README 'Other backbone and hard
preset'), rendered from results/ablation/motion/ with `--baseline rgb_only --marker motion`:

<!-- table:motion -->

| setting | streams | hal. loss | CENet | val top-1 | test top-1 | seeds | test top-5 | test mean class acc. | hal. R² (test) | > train mean | train min | Δ test top-1 vs baseline | pairs | p (paired t) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| hal_all_unc_grouped | OFF + ODF + SDF | Uncert. | grouped | 7.3 ± 2.1 | 8.7 ± 0.6 | 3 | 36.5 | 8.7 | -0.024 | 1/15 | 12.8 | +0.7 ± 1.6 | 3 | 0.529 |
| rgb_only | RGB only (baseline) | - | - | 6.9 ± 3.0 | 8.0 ± 1.6 | 3 | 33.7 | 8.0 | - | - | 7.3 | ref. | - | - |

val / test top-1: video top-1 (%, multi-view averaged) on the validation split and on the held-out test split, mean ± sample std over seeds ("-" std with one seed). Runs select on val only: no row, setting or checkpoint was chosen by its test result. seeds: runs in the row. test top-5, mean class acc.: means over seeds, test split. hal. R²: pooled R² of hallucinated vs ground-truth descriptors on test, mean over streams and seeds; > train mean: (seed, stream) pairs whose R² and cosine both beat the constant train-mean predictor, of those where it is known. train min: wall minutes per run, mean. Δ test top-1 vs baseline (ref.): mean ± sample std over paired seeds of (row − baseline) test top-1 in points, runs paired by config.seed (same seed, same data order); pairs: seeds with a test result in both rows; p: paired t-test (scipy.stats.ttest_rel), two-sided, uncorrected for the number of rows, "-" with fewer than 2 pairs. "-" elsewhere: no such result (e.g. runs from before the test split).

<!-- /table:motion -->

Earlier: Result (2026-11-26, the motion preset, patch-stem ViViT, seeds 0-2, H200 box):
val top-1 7.3 +- 2.8% (chance 8.3%).
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict of this ablation row (`arg`: a preset of configs/default.py)."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  c.name = 'rgb_only'  # the row label of halluc_jax.tools.tables
  c.data.aux_dir = ''  # no auxiliary targets: the model has no hallucination streams
  # Only the classification loss is left; one joint update per step instead of an empty
  # hallucination pass followed by the classification pass (same objective, half the compute).
  c.loss.update_scheme = 'joint'
  c.loss.hallucination = 'mse'  # unused without streams; stated so the table reads '-'
  return c
