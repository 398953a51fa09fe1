"""I3D backbone on CPU: configs/default.py with a reduced I3D ('mini') instead of the tiny ViViT.

'mini' is the published Inception-v1 I3D at a quarter of its width with one Inception block per
stage (Mixed_3c, Mixed_4f, Mixed_5c; models/variants.py), trained from scratch on 16x64x64 clips.
Its X(rgb) is [B, 1, 256] (Mixed_5c's 2x2x2 map, pooled), read by the I3D stream heads (temporal
conv -> ReLU -> FC -> PN). For the published network use
`--config.model.backbone.variant=full --config.data.num_frames=64 --config.data.crop_size=224`.

Run:
  python -m halluc_jax.main --config configs/i3d.py --workdir workdirs/i3d
  Step time: python -m halluc_jax.bench.train --config configs/i3d.py --real=false --steps 6 \
      --warmup 2

Result: not yet measured.
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config():
  """Returns the ConfigDict: the default run with the 'mini' I3D backbone."""
  c = runpy.run_path(_DEFAULT)['get_config']()
  b = c.model.backbone
  b.name = 'i3d'
  b.variant = 'mini'
  b.overrides = {}  # default.py's are ViViT fields
  return c
