"""Paper Table 8, EPIC-Kitchens-55 with I3D, verbs: BoW/FV/OFF + ODF/SDF + AF, d = 256.

Paper numbers (Table 8, I3D, all streams, d = 256): top-1 verbs 61.7 on the validation split
(nouns 40.4, actions 30.3; d = 512: 62.0 / 40.9 / 30.5) and on the test sets S1 (seen) 70.0 /
50.7 / 38.7 and S2 (unseen) 61.7 / 40.0 / 30.3 (verbs / nouns / actions). Not run here (needs
the dataset and the checkpoint).

One classifier per run: this config is the verb task (125 classes); nouns are the same config
with `--config.data.num_classes=352` and a noun annotation CSV. Actions (verb, noun pairs) are
not scored here (the paper does not say how; docs/method.md §9.15). Validation split: Baradel et
al.'s (ECCV 2018) held-out participants, in the annotation CSV.

Streams: bow, fv1, fv2, off, det1..det4, sal1, sal2, af. No gsf: EPIC has no skeletons and the
paper's Toyota-trained GSF stream cannot be loaded here (the table's rows include it). d = 256
(paper: I3D on EPIC), K = 8. Everything else: configs/paper/_base.py `small_dataset`.

  python -m halluc_jax.targets.extract --config configs/paper/epic55_verbs_i3d.py
  python -m halluc_jax.main --config configs/paper/epic55_verbs_i3d.py \
      --workdir workdirs/paper/epic55_verbs_i3d --config.data.aux_dir=data/epic_kitchens55/targets \
      --config.init_from.path=<rgb_imagenet.pt>
Dry run (results/plan/paper/epic55_verbs_i3d.json):
  python -m halluc_jax.tools.plan --config configs/paper/epic55_verbs_i3d.py --devices 8
"""
import os
import runpy

_BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_base.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: unused)."""
  del arg
  base = runpy.run_path(_BASE)
  streams = base['BFO'] + base['ODF_SDF'] + ('af',)
  c = base['small_dataset']('epic55_verbs_i3d', 'data/epic_kitchens55', 125, streams, d=256, k=8)
  return c
