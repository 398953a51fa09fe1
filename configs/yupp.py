"""YUP++ dynamic scenes (halluc_jax/data/datasets/yupp.py; README 'The paper's datasets').
20 scene classes, top-1 on the test split (9/10 of the videos) of the static or moving camera
setting. The 1/10 train split is derived by the reader (first tenth by file name), NOT the
official list: results are not comparable with published ones until that list is used.

Files (http://vision.eecs.yorku.ca/research/dynamic-scenes/): YUP++.zip
  -> data/yupp/YUP++/{camera_stationary,camera_moving}/<Class>/<video>.mp4

Run (no validation set: the eval split is test, choose no setting on it):
  python -m halluc_jax.main --config configs/yupp.py --workdir workdirs/yupp_static
  python -m halluc_jax.main --config configs/yupp.py --workdir workdirs/yupp_moving \
      --config.data.protocol=moving
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'yupp'
  d.annotations = 'data/yupp/YUP++'
  d.root = 'data/yupp/YUP++'
  d.protocol = 'static'  # 'static' | 'moving'
  d.num_classes = 20
  d.train_split, d.eval_split, d.test_split = 'train', 'test', ''
  d.sampling, d.flip = 'dense', True  # scenes have no left/right classes
  d.aux_dir = 'data/yupp/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
