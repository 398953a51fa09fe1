"""All streams, uncertainty loss (grouped CENet), the paper's co-supervision and head.

`configs/hal_all_unc_grouped.py` with the hallucination pass also updating the backbone
(`loss.hal_pass_trains_backbone = True`) and heads without input normalisation
(`model.streams.input_norm = 'none'`): the main job's setting until 2026-12-01, kept as an
ablation row (docs/method.md, 'Stream heads').

Run (one workdir per seed):
  python -m halluc_jax.main --config configs/hal_all_unc_grouped_cosup.py \
      --workdir workdirs/ablation/hal_all_unc_grouped_cosup_s0 \
      --config.seed=0 --config.data.shuffle_seed=0

Result on the `objects` preset (seeds 0-4, 2-core CPU, runs of 2026-12-01 17:26-18:15 exported
as `hal_all_unc_grouped`, renamed to this row when the default changed): see the table in
README 'Ablation on the objects preset'. Those summaries predate the config keys
`data.worker_shared_memory`, `optim.hal_pass_backbone_lr_mult` and `optim.stream_weight_decay`
(their defaults, False / 1.0 / -1, are what those runs did).
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_GROUPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hal_all_unc_grouped.py')


def get_config():
  """Returns the ConfigDict of this ablation row."""
  c = runpy.run_path(_GROUPED)['get_config']()
  c.name = 'hal_all_unc_grouped_cosup'  # the row label of halluc_jax.tables
  c.loss.hal_pass_trains_backbone = True
  c.model.streams.input_norm = 'none'
  return c
