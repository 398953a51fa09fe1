"""Paper Table 9, Toyota Smarthome with I3D: BoW/FV/OFF + ODF/SDF + GSF + AF, uncertainty loss.

Paper numbers: mean per-class accuracy 65.1 (CS) / 44.3 (CV1) / 56.3 (CV2) (Table 9, I3D, all
streams, "Unc."; the plain I3D: 53.4 / 34.9 / 45.1). Not run here (needs the dataset and the
checkpoint).

31 classes; the cross-subject (CS) protocol in the annotation CSV, CV1/CV2 as other CSVs; the
table's metric is the evaluation's mean class accuracy. Streams: every one (Toyota provides
skeletons for GSF). d = 512 and K = 8: the paper gives no d for Toyota; we take its HMDB-51
setting. Everything else: configs/paper/_base.py `small_dataset`.

  python -m halluc_jax.targets.extract --config configs/paper/toyota_smarthome_i3d.py
  python -m halluc_jax.main --config configs/paper/toyota_smarthome_i3d.py \
      --workdir workdirs/paper/toyota_smarthome_i3d --config.data.aux_dir=data/toyota_smarthome/targets \
      --config.init_from.path=<rgb_imagenet.pt>
Dry run (results/plan/paper/toyota_smarthome_i3d.json):
  python -m halluc_jax.tools.plan --config configs/paper/toyota_smarthome_i3d.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused)."""
  del arg
  base = runpy.run_path(_BASE)
  streams = base['BFO'] + base['ODF_SDF'] + ('gsf', 'af')
  return base['small_dataset']('toyota_smarthome_i3d', 'data/toyota_smarthome', 31, streams,
                               d=512, k=8)
