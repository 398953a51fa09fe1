"""Charades v1 in its official CSVs (halluc_jax/data/datasets/charades.py; README 'The paper's
datasets'). 157 classes, multi-label over the whole video, mAP on the test split.

Files (https://prior.allenai.org/projects/charades):
  Charades_v1_480.zip -> data/charades/Charades_v1_480/<id>.mp4
  Charades.zip -> data/charades/Charades/{Charades_v1_train,Charades_v1_test}.csv,
      Charades_v1_classes.txt

Run (no official validation set: the eval split is test, choose no setting on it):
  python -m halluc_jax.main --config configs/charades.py --workdir workdirs/charades
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'charades'
  d.annotations = 'data/charades/Charades'
  d.root = 'data/charades/Charades_v1_480'
  d.num_classes = 157
  d.multi_label = True
  c.loss.multi_label = True  # sigmoid BCE per class; evaluation reports mAP
  d.train_split, d.eval_split, d.test_split = 'train', 'test', ''
  d.sampling, d.flip = 'dense', True
  d.aux_dir = 'data/charades/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
