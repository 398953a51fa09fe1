"""Something-Something V2 (Goyal et al., ICCV 2017) in its official JSON files.

config.data.annotations: the directory of the label files (20bn's
`something-something-v2-{labels,train,validation}.json`; the short names `labels.json`,
`train.json`, `validation.json` are read as well):

  labels.json       {"Putting something on a surface": "120", ...}: class name -> index (a
                    string), 174 classes
  train.json        [{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
  validation.json     "template": "Holding [something] next to [something]",
                      "placeholders": ["potato", "vicks vaporub bottle"]}, ...]

The class of a video is its `template` with the brackets removed ("Holding something next to
something"), which is how labels.json names it; `label` is the template filled in with the
placeholders and is not a class. test.json lists ids only (its labels were withheld), so it is
not a split here. config.data.root: the videos, `<root>/<id>.webm`. Splits: 'train',
'validation' (the protocol reports top-1 on validation).

SSv2 has left/right classes ("Pushing something from left to right"), so its config turns
horizontal flips off (config.data.flip = False) and samples uniformly over the video.
"""
import json
import os

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

SPLITS = ('train', 'validation')
_PREFIX = 'something-something-v2-'


def _json(directory, name, what):
  path = common.first_existing(directory, (f'{name}.json', f'{_PREFIX}{name}.json'), what)
  with open(path) as f:
    try:
      return path, json.load(f)
    except json.JSONDecodeError as e:
      raise common.FormatError(path, e.lineno, f'not valid JSON ({e.msg})') from None


def class_of(template):
  """The class name of a template: "Holding [something]" -> "Holding something"."""
  return template.replace('[', '').replace(']', '')


def read_labels(directory):
  """Class names in index order from labels.json."""
  path, labels = _json(directory, 'labels', 'SSv2 labels.json')
  if not isinstance(labels, dict):
    raise common.FormatError(path, None, 'expected an object {template: "index"}')
  by_index = {}
  for name, value in labels.items():
    try:
      by_index[int(value)] = name
    except (TypeError, ValueError):
      raise common.FormatError(path, None, f'class {name!r} has index {value!r}, not an '
                               'integer') from None
  if sorted(by_index) != list(range(len(labels))):
    raise common.FormatError(path, None, f'class indices are not 0..{len(labels) - 1}')
  return [by_index[i] for i in range(len(labels))]


split_names = common.fixed_split_names(SPLITS)


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  del options
  common.check_split(split, SPLITS, directory)
  common.require_dir(directory, 'config.data.annotations')
  class_names = read_labels(directory)
  index = {n: i for i, n in enumerate(class_names)}
  path, items = _json(directory, split, f'SSv2 {split}.json')
  if not isinstance(items, list):
    raise common.FormatError(path, None, 'expected a list of {id, label, template, '
                             'placeholders}')
  records = []
  for number, item in enumerate(items):
    where = f'entry {number}'  # JSON entries have no useful line number
    if not isinstance(item, dict) or 'id' not in item or 'template' not in item:
      raise common.FormatError(path, None, f'{where}: expected {{"id", "template", ...}}, '
                               f'got {str(item)[:80]!r}')
    name = class_of(item['template'])
    if name not in index:
      raise common.FormatError(path, None, f'{where} (id {item["id"]}): template '
                               f'{item["template"]!r} names no class of labels.json')
    vid = str(item['id'])
    records.append(annotations.VideoRecord(vid, os.path.join(root, vid + '.webm'), index[name],
                                           split))
  return common.finish(records, class_names, path, root, split)
