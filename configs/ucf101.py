"""UCF-101 in its official train/test lists (halluc_jax/data/datasets/ucf101.py; README 'The
paper's datasets'). 101 classes, top-1 on the test list of split 1, 2 or 3 (mean over the three).

Files (https://www.crcv.ucf.edu/data/UCF101.php):
  UCF101.rar -> data/ucf101/UCF-101/<class>/v_<class>_gXX_cXX.avi
  UCF101TrainTestSplits-RecognitionTask.zip -> data/ucf101/ucfTrainTestlist/{classInd,
      trainlist0N,testlist0N}.txt

Run (no official validation set: the eval split is test, choose no setting on it):
  python -m halluc_jax.main --config configs/ucf101.py --workdir workdirs/ucf101_s1 \
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
  d.format = 'ucf101'
  d.annotations = 'data/ucf101/ucfTrainTestlist'
  d.root = 'data/ucf101/UCF-101'
  d.split_index = 1  # 1..3
  d.num_classes = 101
  d.train_split, d.eval_split, d.test_split = 'train', 'test', ''
  d.sampling, d.flip = 'dense', True
  d.aux_dir = 'data/ucf101/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
