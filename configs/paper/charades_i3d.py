"""Paper Table 7, Charades with I3D: BoW/FV/OFF + ODF/SDF + AF, d = 128, K = 12, CENet on psi~.

Paper number: 52.1 mAP (Table 7, I3D, last row "+AF, d 128, MSK 12, CENet input psi~"; the
plain I3D: 37.2). Not run here (needs the dataset and the checkpoint).

157 classes, multi-label (sigmoid BCE; mAP). Streams: bow, fv1, fv2, off, det1..det4, sal1,
sal2, af. No gsf: Charades has no skeletons, and the paper's GSF stream was trained on Toyota
Smarthome, which this code cannot load into a stream head (the table's rows are cumulative, so
52.1 includes it). d = 128 and K = 12 are the row's (paper). CENet reads stop_gradient(psi~), the
row's CENet input. Charades ships train and test only: select on a 'val' split held out
of train (`data.eval_split`), report on 'test'. Everything else: configs/paper/_base.py `small_dataset`.

  python -m halluc_jax.targets.extract --config configs/paper/charades_i3d.py
  python -m halluc_jax.main --config configs/paper/charades_i3d.py --workdir workdirs/paper/charades_i3d \
      --config.data.aux_dir=data/charades/targets --config.init_from.path=<rgb_imagenet.pt>
Dry run (results/plan/paper/charades_i3d.json):
  python -m halluc_jax.tools.plan --config configs/paper/charades_i3d.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused)."""
  del arg
  base = runpy.run_path(_BASE)
  streams = base['BFO'] + base['ODF_SDF'] + ('af',)
  c = base['small_dataset']('charades_i3d', 'data/charades', 157, streams, d=128, k=12,
                            multi_label=True)
  return c
