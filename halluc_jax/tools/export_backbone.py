r"""Exports a trained run's backbone in a published checkpoint layout, for `config.init_from`.

  python -m halluc_jax.tools.export_backbone --workdir workdirs/transfer/i3d_rgb_only_objects_s0 \
      --out workdirs/transfer/i3d_objects_s0.safetensors [--format i3d_pytorch]

Formats: 'i3d_pytorch' (piergiaj/pytorch-i3d's state-dict names; models/converters/i3d.py
`to_pytorch`), written as .safetensors. The weights are the run's newest checkpoint (its EMA copy
when it kept one, `checkpointing.restore_run`); BatchNorm running statistics go with them. A
converter that reads the file back gives the same arrays (tests/test_export_backbone.py), so
another run can start from it with `--config.init_from.path=<out>
--config.init_from.format=i3d_pytorch` (docs/method.md, 'Pretrained weights').
"""
import os

import jax
import numpy as np
from absl import app
from absl import flags
from absl import logging
from safetensors.numpy import save_file

from halluc_jax import checkpointing
from halluc_jax.models import variants
from halluc_jax.models.converters import i3d as i3d_converter

FORMATS = ('i3d_pytorch',)


def export(workdir, out, fmt='i3d_pytorch'):
  """Writes the backbone of `workdir` to `out`; returns (step, number of arrays)."""
  if fmt not in FORMATS:
    raise ValueError(f'--format={fmt!r}; expected one of {FORMATS}.')
  config = checkpointing.load_run_config(workdir)
  backbone = config.model.backbone
  if fmt == 'i3d_pytorch' and backbone.get('name', 'vivit') != 'i3d':
    raise ValueError(f"--format=i3d_pytorch needs a run with the I3D backbone; {workdir} ran "
                     f"backbone.name={backbone.get('name', 'vivit')!r}.")
  if not out.endswith('.safetensors'):
    raise ValueError(f'--out={out!r}: the export is written as .safetensors.')
  step, variables = checkpointing.restore_run(workdir)
  size = variants.decode_i3d_variant(backbone.variant, **dict(backbone.get('overrides', {})))
  state = i3d_converter.to_pytorch(
      {'params': jax.device_get(variables['params']['backbone']),
       'batch_stats': jax.device_get(variables['batch_stats']['backbone'])}, size)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, out,
            metadata={'source': os.path.abspath(workdir), 'step': str(step),
                      'variant': str(backbone.variant), 'format': fmt})
  return step, len(state)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  step, n = export(f.workdir, f.out, f.format)
  logging.info('Wrote %d backbone arrays of step %d to %s.', n, step, f.out)
  print(f'{f.out}: {n} arrays, step {step}')


if __name__ == '__main__':
  # Flags only when run as a command: the module is imported by tests beside other tools.
  flags.DEFINE_string('workdir', None, 'Trained workdir (config.json + checkpoints/).')
  flags.DEFINE_string('out', None, 'Output .safetensors file.')
  flags.DEFINE_enum('format', 'i3d_pytorch', list(FORMATS), 'Checkpoint layout.')
  flags.mark_flags_as_required(['workdir', 'out'])
  app.run(main)
