"""HMDB-51 (Kuehne et al., ICCV 2011) in its official split files.

config.data.annotations: the directory of the official split files (`testTrainMulti_7030_splits`
of test_train_splits.rar), one file per class and split:

  <class>_test_split<N>.txt   lines `<video file> <0|1|2>`; 1 = train, 2 = test, 0 = unused

config.data.root: the extracted videos, `<root>/<class>/<video file>` (hmdb51_org.rar holds one
rar per class; extract each into its class folder). config.data.split_index: N in 1..3; the
protocol reports the mean top-1 over the three splits (70 train / 30 test videos per class).

Classes: the class names of the split files, sorted (51 in the release). Video id:
`<class>/<video file without extension>`. Splits: 'train', 'test' (no official validation set).
"""
import os
import re

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

SPLITS = ('train', 'test')
_SPLIT_CODE = {'train': 1, 'test': 2}
_FILE = re.compile(r'^(?P<cls>.+)_test_split(?P<n>\d+)\.txt$')


def split_files(directory, split_index):
  """{class: path} of split N's files."""
  common.require_dir(directory, 'config.data.annotations')
  found = {}
  for name in sorted(os.listdir(directory)):
    m = _FILE.match(name)
    if m and int(m['n']) == split_index:
      found[m['cls']] = os.path.join(directory, name)
  if not found:
    raise FileNotFoundError(f'{directory}: no <class>_test_split{split_index}.txt files '
                            f'(config.data.annotations, config.data.split_index={split_index}).')
  return found


split_names = common.fixed_split_names(SPLITS)


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  common.check_split(split, SPLITS, directory)
  index = common.three_split_index(options, 'HMDB-51')
  files = split_files(directory, index)
  class_names = sorted(files)
  records = []
  for label, name in enumerate(class_names):
    for line, text in common.numbered_lines(files[name]):
      parts = text.split()
      if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
        raise common.FormatError(files[name], line,
                                 f'expected `<video> <0|1|2>`, got {text!r}')
      if int(parts[1]) != _SPLIT_CODE[split]:
        continue
      video_id = f'{name}/{os.path.splitext(parts[0])[0]}'
      records.append(annotations.VideoRecord(video_id, os.path.join(root, name, parts[0]),
                                             label, split))
  return common.finish(records, class_names, directory, root, split)
