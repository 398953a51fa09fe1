"""Dry-run planner CLI: the train step compiled ahead of time on fake devices, its size and cost.

  python -m halluc_jax.tools.plan --config configs/vivit_b16x2_k400.py [--devices 8] [--config.x=..]
      [--json_out FILE] [--forward=false]

What it compiles and reports: halluc_jax/dry_run.py (`--config.dry_run=True` of
`python -m halluc_jax.main` runs the same). `--devices=0` uses the real devices of the default
backend instead of fake CPU ones.
"""
import json

from absl import app
from absl import flags
from ml_collections import config_flags

from halluc_jax import dry_run


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  try:
    result = dry_run.run(f.config, max(0, f.devices), with_forward=f.forward)
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f'FATAL: {e}') from e
  if f.json_out:
    with open(f.json_out, 'w') as out:
      json.dump(result, out, indent=1)


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', None, 'Experiment config file (.py).',
                                  lock_config=True)
  flags.DEFINE_integer('devices', 8, 'Fake CPU devices for the mesh (0 = the real devices).')
  flags.DEFINE_bool('forward', True, 'Also compile one-clip forward programs for exact '
                    'per-clip forward FLOPs.')
  flags.DEFINE_string('json_out', None, 'Also write the figures as JSON to this path.')
  flags.mark_flags_as_required(['config'])
  app.run(main)
