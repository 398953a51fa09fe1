"""Paper Table 4, HMDB-51 with I3D: every stream the table adds, uncertainty loss.

Paper number: 88.6% mean accuracy over the 3 splits (Table 4, I3D, BoW/FV/OFF + ODF + SDF + GSF
+ AF, "Uncert."; the plain I3D: 74.8%). Not run here (needs the dataset and the checkpoint).

Streams: bow, fv1, fv2, off, det1..det4, sal1, sal2, gsf, af (configs/paper/_base.py says where
each target comes from; HMDB-51 has skeletons for GSF and a sound track for AF). d = 512 (the
setting of the paper's HMDB-51 re-weighting table, docs/method.md §8.3; Table 4 gives no d),
K = 8 sketches (paper's MSK default). Split 1 of 3: one annotation CSV per split (`data.
annotations`), and the paper's number is the mean over the three runs. Everything else:
configs/paper/_base.py `small_dataset` (paper: Adam 1e-4 halved every 10 epochs, alpha 1, 64
frames, 224 crops; ours: 50 epochs, batch 32 on 8 x H100, backbone at 0.1x lr, bf16).

Extract the ODF/SDF targets from the exported detections and saliency maps, then train:
  python -m halluc_jax.targets.extract --config configs/paper/hmdb51_i3d.py
  python -m halluc_jax.main --config configs/paper/hmdb51_i3d.py --workdir workdirs/paper/hmdb51_i3d \
      --config.data.aux_dir=data/hmdb51/targets --config.init_from.path=<rgb_imagenet.pt>
Dry run (README 'Dry-run planner', results/plan/paper/hmdb51_i3d.json):
  python -m halluc_jax.tools.plan --config configs/paper/hmdb51_i3d.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused, for the `--config file:arg` form)."""
  del arg
  base = runpy.run_path(_BASE)
  streams = base['BFO'] + base['ODF_SDF'] + ('gsf', 'af')
  c = base['small_dataset']('hmdb51_i3d', 'data/hmdb51', 51, streams, d=512, k=8)
  return c
