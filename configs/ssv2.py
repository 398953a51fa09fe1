"""Something-Something V2 in its official JSON files (halluc_jax/data/datasets/ssv2.py; README
'The paper's datasets'). 174 classes, top-1 on the validation set (the test labels are withheld).

Files (https://www.qualcomm.com/developer/software/something-something-v-2-dataset):
  20bn-something-something-v2-??.zip -> data/ssv2/videos/<id>.webm
  the labels zip -> data/ssv2/labels/something-something-v2-{labels,train,validation}.json

Left/right classes ("Pushing something from left to right"): no horizontal flips; frames are
sampled uniformly over the whole (short) video, TSN-style.

Run:
  python -m halluc_jax.main --config configs/ssv2.py --workdir workdirs/ssv2
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'ssv2'
  d.annotations = 'data/ssv2/labels'
  d.root = 'data/ssv2/videos'
  d.num_classes = 174
  d.train_split, d.eval_split, d.test_split = 'train', 'validation', ''
  d.sampling, d.flip = 'uniform', False  # a flip turns "left to right" into another class
  d.aux_dir = 'data/ssv2/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
