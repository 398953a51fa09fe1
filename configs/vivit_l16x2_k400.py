"""Paper scale: ViViT-L/16x2 spatio-temporal on Kinetics-400, frozen backbone (docs/method.md §9.4).

Everything as configs/vivit_b16x2_k400.py (16 frames at 224 px, bf16, 8 clips per device on 8
devices, streams bow/fv1/fv2/off with d = 128 and K = 8, uncertainty loss, concat + sketch to
2000) except the backbone: ViT-L (24 blocks, width 1024), frozen as docs/method.md §9.4 prescribes for
large backbones, so only streams, HAF, CENet and PredNet train on its pooled tokens and the
train step runs the backbone forward only (no backward).

Dry run (no data, 8 fake CPU devices):
  python -m halluc_jax.tools.plan --config configs/vivit_l16x2_k400.py --devices 8
Result (2-core CPU box, jax 0.10.2; compile 61 s wall):
  parameters 315,224,368 = backbone 305,490,944 + streams 4,198,400 + haf 1,049,600
      + cenet 3,681,024 + prednet 804,400
  forward of one clip: 1.208 TFLOPs = 603.8 GMACs (analytic backbone 596.8 GMACs)
  train step: 18.69 TFLOPs per device, 149.5 TFLOPs on 8 devices = 2.336 TFLOPs per clip
      (1.93 forwards per clip: the two passes each run the frozen backbone forward)
  memory per device (CPU compile): arguments 1.38 GiB, temporaries 14.28 GiB, total 15.65 GiB
"""
import os
import runpy

_B16 = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'vivit_b16x2_k400.py')


def get_config():
  """Returns the ConfigDict."""
  return runpy.run_path(_B16)['get_config'](variant='L/16x2', backbone_lr_mult=0.0)
