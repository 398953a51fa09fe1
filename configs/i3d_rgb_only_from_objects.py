"""Transfer across presets: configs/i3d_rgb_only.py with its backbone initialised from an I3D
trained on the other embedded preset (issue 13 item 8; README 'Fine-tuning from our own
checkpoint').

The source: configs/i3d_rgb_only.py, seed 0, trained on the `objects` preset, its backbone
exported in pytorch-i3d's layout and read back by `config.init_from` (format 'i3d_pytorch'):

  python -m halluc_jax.main --config configs/i3d_rgb_only.py \
      --workdir workdirs/transfer/i3d_rgb_only_objects_s0 --config.seed=0 --config.data.shuffle_seed=0
  python -m halluc_jax.tools.export_backbone --workdir workdirs/transfer/i3d_rgb_only_objects_s0 \
      --out workdirs/transfer/i3d_objects_s0.safetensors

Then this row against training from scratch, on the `motion` preset, seeds 0-2:

  HALLUC_PRESET=motion HALLUC_ROWS="i3d_rgb_only i3d_rgb_only_from_objects" HALLUC_SEEDS="0 1 2" \
      HALLUC_RESULTS_DIR=results/transfer/motion_i3d bash run.sh ablation

Everything but the backbone's initial weights (and BatchNorm statistics) is the scratch row's:
the same recipe, learning rate and schedule, HAF and PredNet at their init.

Result (rendered from results/transfer/motion_i3d/ by `python -m halluc_jax.tools.tables --results
'results/transfer/motion_i3d/*.json' --baseline i3d_rgb_only --update
configs/i3d_rgb_only_from_objects.py,README.md --marker transfer`):

<!-- table:transfer -->

| setting | streams | hal. loss | CENet | val top-1 | test top-1 | seeds | test top-5 | test mean class acc. | hal. R² (test) | > train mean | train min | Δ test top-1 vs baseline | pairs | p (paired t) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| i3d_rgb_only_from_objects | RGB only (baseline) | - | - | 19.8 ± 6.8 | 17.7 ± 1.0 | 3 | 58.3 | 17.7 | - | - | 4.8 | +8.7 ± 2.2 | 3 | 0.020 |
| i3d_rgb_only | RGB only (baseline) | - | - | 9.4 ± 2.1 | 9.0 ± 1.2 | 3 | 43.4 | 9.0 | - | - | 5.5 | ref. | - | - |

val / test top-1: video top-1 (%, multi-view averaged) on the validation split and on the held-out test split, mean ± sample std over seeds ("-" std with one seed). Runs select on val only: no row, setting or checkpoint was chosen by its test result. seeds: runs in the row. test top-5, mean class acc.: means over seeds, test split. hal. R²: pooled R² of hallucinated vs ground-truth descriptors on test, mean over streams and seeds; > train mean: (seed, stream) pairs whose R² and cosine both beat the constant train-mean predictor, of those where it is known. train min: wall minutes per run, mean. Δ test top-1 vs baseline (ref.): mean ± sample std over paired seeds of (row − baseline) test top-1 in points, runs paired by config.seed (same seed, same data order); pairs: seeds with a test result in both rows; p: paired t-test (scipy.stats.ttest_rel), two-sided, uncorrected for the number of rows, "-" with fewer than 2 pairs. "-" elsewhere: no such result (e.g. runs from before the test split).

<!-- /table:transfer -->
"""
import os
import runpy

_HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = 'workdirs/transfer/i3d_objects_s0.safetensors'


def get_config(arg=None):
  """configs/i3d_rgb_only.py with init_from = the objects-trained I3D backbone."""
  c = runpy.run_path(os.path.join(_HERE, 'i3d_rgb_only.py'))['get_config'](arg)
  c.init_from.path = SOURCE
  c.init_from.format = 'i3d_pytorch'
  c.name = 'i3d_rgb_only_from_objects'
  return c
