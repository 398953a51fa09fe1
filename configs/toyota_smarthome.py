"""Toyota Smarthome trimmed clips (halluc_jax/data/datasets/toyota_smarthome.py; README 'The
paper's datasets'). Mean per-class accuracy (evaluation's mean_class_accuracy) on the test split
of protocol CS (31 classes), CV1 or CV2 (cross-view classes: see the reader).

Files (https://project.inria.fr/toyotasmarthome, on request): the trimmed clips
  -> data/toyota_smarthome/mp4/<Activity>_pNN_rNN_vNN_cNN.mp4 (the protocols come from the names)

Run (CS has no validation cameras: its eval split is test, choose no setting on it):
  python -m halluc_jax.main --config configs/toyota_smarthome.py --workdir workdirs/toyota_cs
  python -m halluc_jax.main --config configs/toyota_smarthome.py --workdir workdirs/toyota_cv2 \
      --config.data.protocol=cv2 --config.data.num_classes=19 --config.data.eval_split=val \
      --config.data.test_split=test
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """Returns the ConfigDict (`arg`: a preset of configs/default.py, e.g. 'tiny')."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  d = c.data
  d.format = 'toyota_smarthome'
  d.annotations = 'data/toyota_smarthome/mp4'
  d.root = 'data/toyota_smarthome/mp4'
  d.protocol = 'cs'  # 'cs' | 'cv1' | 'cv2'
  d.num_classes = 31  # CS; the cross-view protocols have 19
  d.train_split, d.eval_split, d.test_split = 'train', 'test', ''
  d.sampling, d.flip = 'dense', True
  d.aux_dir = 'data/toyota_smarthome/targets'  # from halluc_jax.targets.extract ('' = RGB only)
  c.extract.split = 'train'  # the paper trains on train-split targets only
  c.extract.resize_short = 240  # decode real videos at 240 px for the descriptors
  return c
