"""+ OFF: hallucinate the optical-flow-feature stream only, MSE loss.

Ablation on the embedded dataset, in the spirit of the "+OFF" rows of docs/method.md §8.3 Table 7.

Run (one workdir per seed; protocol in README 'Ablation on the embedded dataset'):
  python -m halluc_jax.main --config configs/hal_off.py \
      --workdir workdirs/ablation/hal_off_s0 \
      --config.seed=0 --config.data.shuffle_seed=0

On the `objects` preset (ViViT + conv stem, the main job's recipe, 2-core CPU, 2026-12-01), seed 0
only so far: val top-1 50.0%, test 44.8%, the OFF head below the train mean on test (README 'Ablation on the objects preset').

Earlier: Result (2026-11-26, seeds 0-2, H200 box, `bash run.sh ablation` protocol): val top-1
10.8 +- 2.2% (chance 8.3%), hallucination R^2 -1.09; ~5 min per run. At chance, like every row:
see README 'Ablation on the embedded dataset' for why.
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict of this ablation row (`arg`: a preset of configs/default.py)."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  c.name = 'hal_off'  # the row label of halluc_jax.tools.tables
  c.model.streams.use_groups = ('off',)
  c.loss.hallucination = 'mse'
  return c
