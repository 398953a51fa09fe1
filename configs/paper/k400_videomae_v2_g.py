"""Paper Table 10, Kinetics-400 with VideoMAE V2-g (frozen): + BoW/FV + OFF, uncertainty loss.

Paper number: 87.6% top-1 (Table 10, VideoMAE V2 ViT-g "+ BoW/FV + OFF"; VideoMAE V2-g alone:
87.2). Not run here (needs the dataset and the checkpoint).

The large-scale protocol (docs/method.md §2.6) trains the streams on 80k Mini-Kinetics-200 clips
with the uncertainty loss (d = 128), freezes them, then fine-tunes HAF + PredNet per dataset.
As given, this config is the one-stage form: frozen backbone (`optim.backbone_lr_mult = 0`),
streams, CENet, HAF and PredNet trained together on the dataset's own targets, two passes per
step. The two-stage form (docs/method.md, 'Frozen backbone and cached features'): cache the
frozen ViT-g's features once (`python -m halluc_jax.tools.cache_features`), run stage 1 on the
Mini-Kinetics subset's cache, then stage 2 on this dataset's cache with
`--config.optim.frozen_groups="('streams','cenet')" --config.init_from.format=run
--config.init_from.path=<stage-1 workdir> --config.init_from.groups=streams,cenet`.
Streams bow, fv1, fv2, off (configs/paper/_base.py says where their targets come from),
d = 128 (paper), K = 8 (ours).

Backbone: VideoMAE V2's ViT-g/14 (1408 wide, 40 blocks), 16 x 224 x 224 clips, tubelet 2
(8 x 16 x 16 = 2048 tokens). Checkpoint users bring (format 'videomae'): the ViT-g fine-tuned
on K400 from VideoMAE V2's model zoo (OpenGVLab/VideoMAEv2, docs/MODEL_ZOO.md). Head recipe (VideoMAE's fine-tuning values, the paper gives
none): mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing 0.25, RandAugment m7 n4 mstd
0.5, repeated augmentation 2, EMA off; layer decay 0.75 and drop path 0.3 act on the backbone
only, so they are inert while it is frozen. Paper: Adam 1e-4 halved every 10 epochs; ours: 30
epochs, batch 64 on 8 x H100, 5 clips x 3 crops at test (VideoMAE V2's K400 views).

  python -m halluc_jax.main --config configs/paper/k400_videomae_v2_g.py \
      --workdir workdirs/paper/k400_videomae_v2_g --config.data.aux_dir=data/kinetics400/targets \
      --config.init_from.path=<videomae_v2_g_k400.pth>
Dry run (results/plan/paper/k400_videomae_v2_g.json):
  python -m halluc_jax.tools.plan --config configs/paper/k400_videomae_v2_g.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused)."""
  del arg
  base = runpy.run_path(_BASE)
  c = base['large_scale']('k400_videomae_v2_g', 'data/kinetics400', 400, base['BFO'])
  c.data.eval_clips, c.data.eval_crops = 5, 3
  return c
