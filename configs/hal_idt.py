"""+ IDT: hallucinate the three dense-trajectory streams (BoW, FV first / second order), MSE loss.

Ablation on the embedded dataset, in the spirit of the "+BoW/FV" rows of docs/method.md §8.3:
the IDT BoW / FV targets of configs/idt_streams.py (extracted into their own folder), the main
job's recipe otherwise.

Run (targets first, then one workdir per seed; RGB-only beside it for the paired comparison):
  python -m halluc_jax.targets.extract --config configs/idt_streams.py
  python -m halluc_jax.main --config configs/hal_idt.py \
      --workdir workdirs/ablation_idt/hal_idt_s0 \
      --config.seed=0 --config.data.shuffle_seed=0
or all rows and seeds at once, exported to results/ablation/objects_idt/:
  HALLUC_ROWS="rgb_only hal_idt" HALLUC_SEEDS="0 1 2" \
    HALLUC_RESULTS_DIR=results/ablation/objects_idt HALLUC_ABLATION_DIR=workdirs/ablation_idt \
    bash run.sh ablation

Result (objects preset, seeds 0-2, 2-core CPU, 2026-12-03): val top-1 53.1 +- 3.8%, test
47.9 +- 3.8%, against RGB-only's 55.9 +- 8.4% / 46.5 +- 3.9% rerun beside it: paired test
difference +1.4 +- 6.9 points (p 0.76), no effect. The heads learn their targets only a little
(test R^2 0.031, above the train mean on 9 of 9 seed x stream pairs), as the targets' own linear
probes predict (configs/idt_streams.py: 17.7-20.8% top-1 at d = 128). Rendered from
results/ablation/objects_idt/ by `python -m halluc_jax.tools.tables --results
'results/ablation/objects_idt/*.json' --baseline rgb_only --update configs/hal_idt.py --marker
objects_idt`:

<!-- table:objects_idt -->

| setting | streams | hal. loss | CENet | val top-1 | test top-1 | seeds | test top-5 | test mean class acc. | hal. R² (test) | > train mean | train min | Δ test top-1 vs baseline | pairs | p (paired t) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| hal_idt | BOW + FV1 + FV2 | MSE | - | 53.1 ± 3.8 | 47.9 ± 3.8 | 3 | 97.2 | 47.9 | 0.031 | 9/9 | 6.0 | +1.4 ± 6.9 | 3 | 0.762 |
| rgb_only | RGB only (baseline) | - | - | 55.9 ± 8.4 | 46.5 ± 3.9 | 3 | 94.8 | 46.5 | - | - | 4.4 | ref. | - | - |

val / test top-1: video top-1 (%, multi-view averaged) on the validation split and on the held-out test split, mean ± sample std over seeds ("-" std with one seed). Runs select on val only: no row, setting or checkpoint was chosen by its test result. seeds: runs in the row. test top-5, mean class acc.: means over seeds, test split. hal. R²: pooled R² of hallucinated vs ground-truth descriptors on test, mean over streams and seeds; > train mean: (seed, stream) pairs whose R² and cosine both beat the constant train-mean predictor, of those where it is known. train min: wall minutes per run, mean. Δ test top-1 vs baseline (ref.): mean ± sample std over paired seeds of (row − baseline) test top-1 in points, runs paired by config.seed (same seed, same data order); pairs: seeds with a test result in both rows; p: paired t-test (scipy.stats.ttest_rel), two-sided, uncorrected for the number of rows, "-" with fewer than 2 pairs. "-" elsewhere: no such result (e.g. runs from before the test split).

<!-- /table:objects_idt -->
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict of this ablation row (`arg`: a preset of configs/default.py)."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  c.name = 'hal_idt'  # the row label of halluc_jax.tools.tables
  c.model.streams.use_groups = ('bow', 'fv1', 'fv2')
  c.loss.hallucination = 'mse'
  c.data.aux_dir = 'data/synthetic_objects/targets_idt'
  return c
