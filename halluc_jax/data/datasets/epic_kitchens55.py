"""EPIC-Kitchens-55 (Damen et al., ECCV 2018) action segments, from the official annotations.

config.data.annotations: the directory of epic-kitchens-55-annotations holding

  EPIC_train_action_labels.csv  uid, video_id, participant_id, narration, start_timestamp,
      stop_timestamp, start_frame, stop_frame, verb, verb_class, noun, noun_class, all_nouns,
      all_noun_classes (timestamps `HH:MM:SS.ff`)
  EPIC_verb_classes.csv, EPIC_noun_classes.csv   `<verb|noun>_id, class_key, <verbs|nouns>`
      (optional here: the class names; without them classes are named by their index)

config.data.root: the videos, `<root>/<participant_id>/<video_id>.MP4` (`videos/train` of the
release). Each CSV row is one segment of a long video: the record carries its start and stop
time (VideoRecord.start_s / end_s) and clips are sampled inside it (sampling.frame_window).
Times rather than start/stop_frame, because the frame numbers count the released 60 fps frames
and a re-encoded video may have another rate.

Label (config.data.label_field): 'verb' (verb_class, 125 classes), 'noun' (noun_class, 352
classes) or 'action' (the (verb_class, noun_class) pairs of the CSV, sorted, named
`verb noun`). Video id: the segment's uid (one record per segment, the key of its targets).

Splits: the test sets (s1 seen / s2 unseen kitchens) come without labels, so both splits come
from the train CSV: 'val' is the segments of the participants in config.data.val_participants
and 'train' the others ('all' = every segment). The paper follows the validation split of
Baradel et al. (ECCV 2018), whose participant list we do not have: val_participants is a
choice of the config (configs/epic_kitchens55.py), not that split.
"""
import csv
import os

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

SPLITS = ('train', 'val', 'all')
LABEL_FIELDS = ('verb', 'noun', 'action')
ACTIONS_CSV = 'EPIC_train_action_labels.csv'
COLUMNS = ('uid', 'video_id', 'participant_id', 'start_timestamp', 'stop_timestamp',
           'verb_class', 'noun_class')


def parse_timestamp(text, path, line):
  """`HH:MM:SS.ff` -> seconds."""
  parts = text.split(':')
  try:
    if len(parts) != 3:
      raise ValueError
    return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
  except ValueError:
    raise common.FormatError(path, line, f'timestamp {text!r} is not HH:MM:SS.ff') from None


def _rows(path):
  with open(path, newline='', encoding='utf-8-sig') as f:
    reader = csv.DictReader(f)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
      raise common.FormatError(path, 1, f'header lacks {missing}: {reader.fieldnames}')
    return [(reader.line_num, row) for row in reader]


def _class_names(directory, kind, count):
  """Names of `count` verb or noun classes (class_key of EPIC_<kind>_classes.csv if present)."""
  names = [str(i) for i in range(count)]
  path = os.path.join(directory, f'EPIC_{kind}_classes.csv')
  if os.path.isfile(path):
    with open(path, newline='', encoding='utf-8-sig') as f:
      for row in csv.DictReader(f):
        i = int(row[f'{kind}_id'])
        names += [str(j) for j in range(len(names), i + 1)]
        names[i] = row['class_key']
  return names


def split_names(directory, options):
  del directory
  return ['train', 'all'] + (['val'] if options['val_participants'] else [])


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  common.check_split(split, SPLITS, directory)
  field = options['label_field']
  if field not in LABEL_FIELDS:
    raise ValueError(f'config.data.label_field={field!r}; EPIC-Kitchens has {LABEL_FIELDS}.')
  held_out = set(options['val_participants'])
  if split == 'val' and not held_out:
    raise ValueError("EPIC-Kitchens split 'val' needs config.data.val_participants (the "
                     'participants held out of training).')
  common.require_dir(directory, 'config.data.annotations')
  path = common.require_file(os.path.join(directory, ACTIONS_CSV), 'EPIC-Kitchens ' + ACTIONS_CSV)
  rows = []
  for line, row in _rows(path):
    verb = common.parse_int(row['verb_class'], path, line, 'verb_class')
    noun = common.parse_int(row['noun_class'], path, line, 'noun_class')
    rows.append((line, row, verb, noun))
  verbs = _class_names(directory, 'verb', max(v for _, _, v, _ in rows) + 1)
  nouns = _class_names(directory, 'noun', max(n for _, _, _, n in rows) + 1)
  if field == 'verb':
    class_names, label_of = verbs, lambda v, n: v
  elif field == 'noun':
    class_names, label_of = nouns, lambda v, n: n
  else:  # actions: the pairs of the whole CSV, so train and val share indices
    pairs = sorted({(v, n) for _, _, v, n in rows})
    pair_index = {p: i for i, p in enumerate(pairs)}
    class_names = [f'{verbs[v]} {nouns[n]}' for v, n in pairs]
    label_of = lambda v, n: pair_index[(v, n)]
  records = []
  for line, row, verb, noun in rows:
    if split != 'all' and (row['participant_id'] in held_out) != (split == 'val'):
      continue
    start = parse_timestamp(row['start_timestamp'], path, line)
    stop = parse_timestamp(row['stop_timestamp'], path, line)
    if stop <= start:
      raise common.FormatError(path, line, f'segment ends ({stop} s) before it starts '
                               f'({start} s)')
    video = os.path.join(root, row['participant_id'], row['video_id'] + '.MP4')
    records.append(annotations.VideoRecord(row['uid'], video, label_of(verb, noun), split,
                                           start, stop))
  return common.finish(records, class_names, path, root, split)
