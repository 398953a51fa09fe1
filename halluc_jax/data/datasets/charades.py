"""Charades v1 (Sigurdsson et al., ECCV 2016) in its official CSVs: multi-label, mAP.

config.data.annotations: the directory `Charades` of Charades.zip, holding

  Charades_v1_train.csv, Charades_v1_test.csv   columns id, subject, scene, quality,
      relevance, verified, script, objects, descriptions, actions, length; `actions` is
      `c092 11.90 21.20;c147 0.00 12.60` (class, start s, end s; ';'-separated; may be empty)
  Charades_v1_classes.txt                       `c000 Holding some clothes` (157 lines;
                                                optional here: without it classes are named c000...)

config.data.root: the videos, `<root>/<id>.mp4` (Charades_v1_480.zip). The protocol is
video-level classification: a video's label is the set of classes of its actions, over the
whole video, scored by mAP (config.data.multi_label = True, config.loss.multi_label = True).
Videos with no action are kept, with no positive class. Class index = the number of `cNNN`.
Splits: 'train', 'test' (the protocol evaluates on test; there is no official validation set).
"""
import csv
import os
import re

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

NUM_CLASSES = 157
SPLITS = ('train', 'test')
_CLASS = re.compile(r'^c(\d{3})$')
COLUMNS = ('id', 'actions')


def _class_index(code, path, line):
  m = _CLASS.match(code)
  if not m or int(m[1]) >= NUM_CLASSES:
    raise common.FormatError(path, line, f'unknown class {code!r} (c000..c{NUM_CLASSES - 1})')
  return int(m[1])


def read_class_names(directory):
  """The 157 class names: Charades_v1_classes.txt when present, else 'c000'..'c156'."""
  path = os.path.join(directory, 'Charades_v1_classes.txt')
  names = [f'c{i:03d}' for i in range(NUM_CLASSES)]
  if os.path.isfile(path):
    for line, text in common.numbered_lines(path):
      code, _, name = text.partition(' ')
      names[_class_index(code, path, line)] = name.strip() or code
  return names


def parse_actions(cell, path, line):
  """Sorted unique class indices of an `actions` cell."""
  found = set()
  for item in filter(None, (a.strip() for a in cell.split(';'))):
    parts = item.split()
    if len(parts) != 3:
      raise common.FormatError(path, line, f'action {item!r} is not `cNNN start end`')
    found.add(_class_index(parts[0], path, line))
  return tuple(sorted(found))


split_names = common.fixed_split_names(SPLITS)


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  common.check_split(split, SPLITS, directory)
  if not options['multi_label']:
    raise ValueError('Charades is multi-label (mAP): set config.data.multi_label=True and '
                     'config.loss.multi_label=True (configs/charades.py).')
  common.require_dir(directory, 'config.data.annotations')
  path = common.require_file(os.path.join(directory, f'Charades_v1_{split}.csv'),
                             f'Charades {split} CSV')
  records = []
  with open(path, newline='', encoding='utf-8-sig') as f:
    reader = csv.DictReader(f)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
      raise common.FormatError(path, 1, f'header lacks {missing}: {reader.fieldnames}')
    for row in reader:
      line = reader.line_num  # the record's last physical line (scripts hold newlines)
      vid = (row['id'] or '').strip()
      if not vid:
        raise common.FormatError(path, line, 'empty id')
      label = parse_actions(row['actions'] or '', path, line)
      records.append(annotations.VideoRecord(vid, os.path.join(root, vid + '.mp4'), label,
                                             split))
  return common.finish(records, read_class_names(directory), path, root, split)
