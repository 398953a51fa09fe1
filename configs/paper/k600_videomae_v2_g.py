"""Paper Table 10, Kinetics-600 with VideoMAE V2-g (frozen): + BoW/FV + OFF, uncertainty loss.

Paper number: 89.1% top-1 (Table 10, VideoMAE V2 ViT-g "+ BoW/FV + OFF", tied with "+ ODF/SDF";
VideoMAE V2-g alone: 88.8). Not run here (needs the dataset and the checkpoint).

As configs/paper/k400_videomae_v2_g.py (the large-scale protocol of docs/method.md §2.6 in its
one-stage form: frozen backbone, `optim.backbone_lr_mult = 0`, streams + CENet + HAF + PredNet
trained together on the dataset's own targets; that docstring gives the two-stage form) with 600 classes,
Kinetics-600 data and its checkpoint: VideoMAE V2's K600 fine-tuned ViT-g (format 'videomae').
Streams bow, fv1, fv2, off, d = 128 (paper), K = 8 (ours).

  python -m halluc_jax.main --config configs/paper/k600_videomae_v2_g.py \
      --workdir workdirs/paper/k600_videomae_v2_g --config.data.aux_dir=data/kinetics600/targets \
      --config.init_from.path=<videomae_v2_g_k600.pth>
Dry run (results/plan/paper/k600_videomae_v2_g.json):
  python -m halluc_jax.tools.plan --config configs/paper/k600_videomae_v2_g.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused)."""
  del arg
  base = runpy.run_path(_BASE)
  c = base['large_scale']('k600_videomae_v2_g', 'data/kinetics600', 600, base['BFO'])
  c.data.eval_clips, c.data.eval_crops = 5, 3
  return c
