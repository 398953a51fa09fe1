"""YUP++ dynamic scenes (Feichtenhofer et al., CVPR 2017), from its folder layout.

The release is folders of videos, one per camera setting and scene class:

  <annotations>/camera_stationary/<Class>/<video>.mp4    (20 classes, 30 videos each)
  <annotations>/camera_moving/<Class>/<video>.mp4

config.data.annotations and config.data.root are that YUP++ folder. config.data.protocol:
'static' (camera_stationary) or 'moving' (camera_moving). The paper's protocol trains on 1/10
of the videos and tests on 9/10 ("1/9 split"). The release defines that split as a fixed list
we do not have; here the train split is the first tenth (at least one video) of each class's
videos sorted by file name and the test split the rest. That is OUR choice, stated as such: it
is not the official list. Classes: the class folders, sorted. Video id: `<Class>/<stem>`.
"""
import math
import os

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

PROTOCOLS = {'static': 'camera_stationary', 'moving': 'camera_moving'}
SPLITS = ('train', 'test')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv')
TRAIN_FRACTION = 0.1


def split_names(directory, options):
  del directory, options
  return list(SPLITS)


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  protocol = options['protocol']
  if protocol not in PROTOCOLS:
    raise ValueError(f'config.data.protocol={protocol!r}; YUP++ has {sorted(PROTOCOLS)}.')
  common.check_split(split, SPLITS, directory)
  setting = common.require_dir(os.path.join(directory, PROTOCOLS[protocol]),
                               'config.data.annotations')
  class_names = sorted(n for n in os.listdir(setting) if os.path.isdir(os.path.join(setting, n)))
  if not class_names:
    raise FileNotFoundError(f'{setting}: no class folders (config.data.annotations).')
  records = []
  for label, name in enumerate(class_names):
    videos = sorted(v for v in os.listdir(os.path.join(setting, name))
                    if v.lower().endswith(VIDEO_EXTENSIONS))
    num_train = max(1, math.ceil(TRAIN_FRACTION * len(videos))) if videos else 0
    chosen = videos[:num_train] if split == 'train' else videos[num_train:]
    records += [annotations.VideoRecord(f'{name}/{os.path.splitext(v)[0]}',
                                        os.path.join(root, PROTOCOLS[protocol], name, v),
                                        label, split) for v in chosen]
  return common.finish(records, class_names, setting, root, split)
