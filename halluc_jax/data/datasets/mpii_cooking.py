"""MPII Cooking Activities and MPII Cooking 2 (Rohrbach et al., CVPR 2012 / IJCV 2016): mAP.

config.data.annotations: the directory of the release's annotations, holding

  detectionGroundtruth-1-0.csv   one row per activity segment:
      `subject,file,start_frame,end_frame,category_id,category_name`, with or without the
      header `Subject,File,Start,End,Category,Name`; frames are 1-based and inclusive
  experimentalSetup/sequencesTrainAttr.txt, sequencesVal.txt, sequencesTest.txt
      (MPII Cooking 2, protocol 'official' only): one sequence `sNN-dNN` first on each line

config.data.root: the videos, `<root>/<file>.avi` (the release's), or `.mp4` after re-encoding.
Each row is one segment of a long recording: the record carries its start and end time
(VideoRecord.start_s / end_s, from the frame numbers at the recordings' FRAME_RATE) and clips
are sampled inside it. Video id: `<file>/<start_frame>-<end_frame>`.

Classes: the categories of the CSV without 'Background activity', sorted by category id (64 in
MPII Cooking Activities, the count the paper's protocol uses). The metric is mAP over classes
(Rohrbach et al.): set config.data.multi_label = config.loss.multi_label = True
(configs/mpii_cooking.py); each segment is a positive of its one class.

Protocols (config.data.protocol):
  'cv7'       the paper's: 7-fold cross-subject, fold N = config.data.split_index 1..7 tests
              subject TEST_SUBJECTS[N-1] and trains on every other subject; report the mean
              mAP of the 7 folds. Splits 'train', 'test'. The release ships no fold file: the
              7 held-out subjects are the ones public re-implementations use (listed below).
  'official'  MPII Cooking 2's train / val / test sequence lists (experimentalSetup/).
"""
import csv
import os
import re

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

GROUND_TRUTH = 'detectionGroundtruth-1-0.csv'
SEQUENCE_LISTS = {'train': 'sequencesTrainAttr.txt', 'val': 'sequencesVal.txt',
                  'test': 'sequencesTest.txt'}
TEST_SUBJECTS = (8, 10, 16, 17, 18, 19, 20)
FRAME_RATE = 29.4  # the recordings' frame rate (1624x1224 at 29.4 fps)
BACKGROUND = 'background activity'
PROTOCOL_SPLITS = {'cv7': ('train', 'test'), 'official': ('train', 'val', 'test')}
VIDEO_EXTENSIONS = ('.avi', '.mp4')
_SUBJECT = re.compile(r'^s?0*(\d+)$', re.IGNORECASE)


def _protocol(options):
  protocol = options['protocol']
  if protocol not in PROTOCOL_SPLITS:
    raise ValueError(f'config.data.protocol={protocol!r}; MPII Cooking has '
                     f'{sorted(PROTOCOL_SPLITS)} (configs/mpii_cooking.py).')
  return protocol


def split_names(directory, options):
  del directory
  return list(PROTOCOL_SPLITS[_protocol(options)])


def _subject(text, path, line):
  m = _SUBJECT.match(text.strip())
  if not m:
    raise common.FormatError(path, line, f'subject {text!r} is not `sNN` or a number')
  return int(m[1])


def read_segments(path):
  """[(line, subject, file, start_frame, end_frame, category_id, category_name)] of the CSV."""
  rows = []
  with open(path, newline='', encoding='utf-8-sig') as f:
    for line, row in enumerate(csv.reader(f), start=1):
      if not row or (line == 1 and row[0].strip().lower() == 'subject'):
        continue
      if len(row) < 6:
        raise common.FormatError(path, line, f'expected `subject,file,start,end,category_id,'
                                 f'category_name`, got {row!r}')
      start = common.parse_int(row[2].strip(), path, line, 'start frame')
      end = common.parse_int(row[3].strip(), path, line, 'end frame')
      if end < start or start < 1:
        raise common.FormatError(path, line, f'segment frames {start}..{end} are not a 1-based '
                                 'range')
      category = common.parse_int(row[4].strip(), path, line, 'category id')
      rows.append((line, _subject(row[0], path, line), row[1].strip(), start, end, category,
                   ','.join(row[5:]).strip()))
  if not rows:
    raise common.FormatError(path, 0, 'no segments')
  return rows


def _sequences(directory, split):
  path = common.require_file(os.path.join(directory, 'experimentalSetup', SEQUENCE_LISTS[split]),
                             f'MPII Cooking 2 list {SEQUENCE_LISTS[split]}')
  return {text.split()[0] for _, text in common.numbered_lines(path)}


def _video_path(root, name):
  """`<root>/<name>.avi`, or the first other extension that exists."""
  for ext in VIDEO_EXTENSIONS:
    path = os.path.join(root, name + ext)
    if os.path.isfile(path):
      return path
  return os.path.join(root, name + VIDEO_EXTENSIONS[0])


def _in_split(protocol, split, subject, name, fold, sequences):
  if protocol == 'cv7':
    return (subject == TEST_SUBJECTS[fold - 1]) == (split == 'test')
  return '-'.join(name.split('-')[:2]) in sequences


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  protocol = _protocol(options)
  common.check_split(split, PROTOCOL_SPLITS[protocol], directory)
  fold = int(options['split_index'])
  if protocol == 'cv7' and not 1 <= fold <= len(TEST_SUBJECTS):
    raise ValueError(f'config.data.split_index={fold}: MPII Cooking cv7 has folds 1..7.')
  common.require_dir(directory, 'config.data.annotations')
  path = common.require_file(os.path.join(directory, GROUND_TRUTH), 'MPII Cooking ' + GROUND_TRUTH)
  rows = [r for r in read_segments(path) if r[6].lower() != BACKGROUND]
  names = {}
  for _, _, _, _, _, category, name in rows:
    names.setdefault(category, name)
  class_ids = sorted(names)
  label_of = {c: i for i, c in enumerate(class_ids)}
  sequences = _sequences(directory, split) if protocol == 'official' else None
  records = []
  for _, subject, name, start, end, category, _ in rows:
    if not _in_split(protocol, split, subject, name, fold, sequences):
      continue
    label = label_of[category]
    records.append(annotations.VideoRecord(
        f'{name}/{start}-{end}', _video_path(root, name),
        (label,) if options['multi_label'] else label, split,
        (start - 1) / FRAME_RATE, end / FRAME_RATE))
  return common.finish(records, [names[c] for c in class_ids], path, root, split)
