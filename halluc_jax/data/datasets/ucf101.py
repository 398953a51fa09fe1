"""UCF-101 (Soomro et al., 2012) in its official train/test lists.

config.data.annotations: the directory `ucfTrainTestlist` (UCF101TrainTestSplits-
RecognitionTask.zip) holding

  classInd.txt       `<index, 1-based> <class>`          (101 lines)
  trainlist0N.txt    `<class>/<video>.avi <index>`
  testlist0N.txt     `<class>/<video>.avi`               (the class is the folder)

config.data.root: the extracted `UCF-101` folder, videos at `<root>/<class>/<video>.avi`.
config.data.split_index: N in 1..3; the protocol reports the mean top-1 over the three splits.

Class index = classInd index - 1. A list line's class folder must name a classInd class; the
release spells one folder `HandstandPushups` and its files `v_HandStandPushups_*`, so folders
are matched case-insensitively when the exact name is not found. Video id: the list path
without extension. Splits: 'train', 'test'.
"""
import os

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

SPLITS = ('train', 'test')


def read_class_index(path):
  """Class names in index order from classInd.txt (1-based, contiguous)."""
  names = []
  for line, text in common.numbered_lines(common.require_file(path, 'UCF-101 classInd.txt')):
    parts = text.split()
    if len(parts) != 2:
      raise common.FormatError(path, line, f'expected `<index> <class>`, got {text!r}')
    if common.parse_int(parts[0], path, line, 'class index') != len(names) + 1:
      raise common.FormatError(path, line, f'class index {parts[0]} out of order '
                               f'(expected {len(names) + 1})')
    names.append(parts[1])
  return names


split_names = common.fixed_split_names(SPLITS)


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  common.check_split(split, SPLITS, directory)
  index = common.three_split_index(options, 'UCF-101')
  common.require_dir(directory, 'config.data.annotations')
  class_names = read_class_index(os.path.join(directory, 'classInd.txt'))
  exact = {n: i for i, n in enumerate(class_names)}
  folded = {n.lower(): i for i, n in enumerate(class_names)}
  path = os.path.join(directory, f'{split}list0{index}.txt')
  common.require_file(path, f'UCF-101 {split} list')
  records = []
  for line, text in common.numbered_lines(path):
    parts = text.split()
    if len(parts) != (2 if split == 'train' else 1) or '/' not in parts[0]:
      form = '<class>/<video>.avi <index>' if split == 'train' else '<class>/<video>.avi'
      raise common.FormatError(path, line, f'expected `{form}`, got {text!r}')
    folder = parts[0].split('/')[0]
    label = exact.get(folder, folded.get(folder.lower()))
    if label is None:
      raise common.FormatError(path, line, f'class folder {folder!r} is not in classInd.txt')
    if len(parts) == 2 and common.parse_int(parts[1], path, line, 'class index') != label + 1:
      raise common.FormatError(path, line, f'index {parts[1]} disagrees with the folder '
                               f'{folder!r} (classInd index {label + 1})')
    records.append(annotations.VideoRecord(os.path.splitext(parts[0])[0],
                                           os.path.join(root, parts[0]), label, split))
  return common.finish(records, class_names, path, root, split)
