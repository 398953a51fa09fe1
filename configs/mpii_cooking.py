"""MPII Cooking activity segments (halluc_jax/data/datasets/mpii_cooking.py; README 'The paper's
datasets'). 64 classes (no background), mAP over classes; the paper's protocol is 7-fold
cross-subject (report the mean mAP of folds 1..7).

Files (https://www.mpi-inf.mpg.de, MPII Cooking Activities / MPII Cooking 2, on request):
  the annotations -> data/mpii_cooking/annotations/detectionGroundtruth-1-0.csv
      (MPII Cooking 2 also: annotations/experimentalSetup/sequences{TrainAttr,Val,Test}.txt)
  the videos -> data/mpii_cooking/videos/<sNN-dNN-cam-002>.avi

Run (cv7 has no validation subject: its eval split is test, choose no setting on it):
  python -m halluc_jax.main --config configs/mpii_cooking.py --workdir workdirs/mpii_f1 \
      --config.data.split_index=1     (folds 1..7)
  python -m halluc_jax.main --config configs/mpii_cooking.py --workdir workdirs/mpii2 \
      --config.data.protocol=official --config.data.eval_split=val --config.data.test_split=test \
      --config.data.num_classes=N     (the non-background categories of the release's CSV)
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'mpii_cooking'
  d.annotations = 'data/mpii_cooking/annotations'
  d.root = 'data/mpii_cooking/videos'
  d.protocol = 'cv7'  # 'cv7' (the paper's 7 folds) | 'official' (MPII Cooking 2's lists)
  d.split_index = 1  # the cv7 fold, 1..7
  d.num_classes = 64
  d.multi_label = True  # mAP: each segment is a positive of its one class
  c.loss.multi_label = True
  d.train_split, d.eval_split, d.test_split = 'train', 'test', ''
  d.sampling, d.flip = 'dense', True
  d.aux_dir = 'data/mpii_cooking/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
