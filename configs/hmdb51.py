"""HMDB-51 in its official split files (halluc_jax/data/datasets/hmdb51.py; README 'The
paper's datasets'). 51 classes, top-1 on the test split of split 1, 2 or 3; papers report the mean
over the three.

Files (https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/):
  hmdb51_org.rar -> data/hmdb51/videos/<class>/<video>.avi (unrar each class's rar into its folder)
  test_train_splits.rar -> data/hmdb51/testTrainMulti_7030_splits/<class>_test_split<N>.txt

Run (one workdir per split; HMDB-51 has no official validation set, so the eval split is test
and no setting may be chosen on it):
  python -m halluc_jax.main --config configs/hmdb51.py --workdir workdirs/hmdb51_s1 \
      --config.data.split_index=1
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'hmdb51'
  d.annotations = 'data/hmdb51/testTrainMulti_7030_splits'
  d.root = 'data/hmdb51/videos'
  d.split_index = 1  # 1..3
  d.num_classes = 51
  d.train_split, d.eval_split, d.test_split = 'train', 'test', ''
  d.sampling, d.flip = 'dense', True
  d.aux_dir = 'data/hmdb51/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
