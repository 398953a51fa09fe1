"""Paper Table 10, Something-Something v2 with VideoMAE V2-g (frozen): BoW/FV + OFF + ODF/SDF.

Paper number: 77.4% top-1 (Table 10, VideoMAE V2 ViT-g "+ BoW/FV + OFF + ODF/SDF"; VideoMAE V2-g
alone: 77.0). Not run here (needs the dataset and the checkpoint).

As configs/paper/k400_videomae_v2_g.py (the large-scale protocol of docs/method.md §2.6 in its
one-stage form: frozen backbone, `optim.backbone_lr_mult = 0`, streams + CENet + HAF + PredNet
trained together on the dataset's own targets; that docstring gives the two-stage form) with SSv2's
input: 174 classes, 16 frames one per TSN segment (`data.sampling = 'uniform'`), no flip (labels
name directions), 2 clips x 3 crops at test (VideoMAE V2's SSv2 views). Streams bow, fv1, fv2,
off, det1..det4, sal1, sal2, d = 128 (paper), K = 8 (ours). Checkpoint (format 'videomae'):
VideoMAE V2's SSv2 fine-tuned ViT-g.

  python -m halluc_jax.targets.extract --config configs/paper/ssv2_videomae_v2_g.py
  python -m halluc_jax.main --config configs/paper/ssv2_videomae_v2_g.py \
      --workdir workdirs/paper/ssv2_videomae_v2_g --config.data.aux_dir=data/ssv2/targets \
      --config.init_from.path=<videomae_v2_g_ssv2.pth>
Dry run (results/plan/paper/ssv2_videomae_v2_g.json):
  python -m halluc_jax.tools.plan --config configs/paper/ssv2_videomae_v2_g.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused)."""
  del arg
  base = runpy.run_path(_BASE)
  c = base['large_scale']('ssv2_videomae_v2_g', 'data/ssv2', 174, base['BFO'] + base['ODF_SDF'],
                          flip=False, sampling='uniform')
  c.data.eval_clips, c.data.eval_crops = 2, 3
  return c
