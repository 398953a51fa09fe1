"""Toyota Smarthome (Das et al., ICCV 2019) trimmed clips; split by the clip file names.

The release (https://project.inria.fr/toyotasmarthome) is one folder of clips named

  <Activity>_p<subject>_r<routine>_v<take>_c<camera>.mp4   e.g. Cook.Cleandishes_p02_r00_v02_c03.mp4

with no list files: the protocols are defined by the subject and camera fields. So
config.data.annotations is that folder (read for the file names) and config.data.root is where
the clips are (usually the same folder). config.data.protocol:

  'cs'   cross-subject: subjects 3, 4, 6, 7, 9, 12, 13, 15, 17, 19, 25 train, the others test
  'cv1'  cross-view: camera 1 train, camera 5 val, camera 2 test
  'cv2'  cross-view: cameras 1, 3, 4, 6, 7 train, camera 5 val, camera 2 test

as the paper describes them (metric: mean per-class accuracy). Classes: for 'cs' every activity
of the folder, sorted (31 in the release); for 'cv1' / 'cv2' the activities present in both the
train and the test cameras, sorted. The paper's 19 cross-view classes are a fixed list that we
do not have; ours are derived from the files and are meant to match it, which we could not
check. Clips of other classes or cameras belong to no split. Video id: the file stem.
"""
import os
import re

from halluc_jax.data import annotations
from halluc_jax.data.datasets import common

PROTOCOLS = ('cs', 'cv1', 'cv2')
CS_TRAIN_SUBJECTS = frozenset((3, 4, 6, 7, 9, 12, 13, 15, 17, 19, 25))
CV_CAMERAS = {'cv1': {'train': {1}, 'val': {5}, 'test': {2}},
              'cv2': {'train': {1, 3, 4, 6, 7}, 'val': {5}, 'test': {2}}}
_NAME = re.compile(r'^(?P<act>[^_]+)_p(?P<p>\d+)_r(?P<r>\d+)_v(?P<v>\d+)_c(?P<c>\d+)\.mp4$')


def parse_name(name, directory):
  """(activity, subject, camera) of a clip file name."""
  m = _NAME.match(name)
  if not m:
    raise common.FormatError(os.path.join(directory, name), None,
                             'not `<Activity>_pNN_rNN_vNN_cNN.mp4`')
  return m['act'], int(m['p']), int(m['c'])


def _clips(directory):
  common.require_dir(directory, 'config.data.annotations')
  names = sorted(n for n in os.listdir(directory) if n.endswith('.mp4'))
  if not names:
    raise FileNotFoundError(f'{directory}: no .mp4 clips (config.data.annotations).')
  return [(n,) + parse_name(n, directory) for n in names]


def _split_of(protocol, subject, camera):
  if protocol == 'cs':
    return 'train' if subject in CS_TRAIN_SUBJECTS else 'test'
  for split, cameras in CV_CAMERAS[protocol].items():
    if camera in cameras:
      return split
  return None


def split_names(directory, options):
  del directory
  return ['train', 'test'] if options['protocol'] == 'cs' else ['train', 'val', 'test']


def read(directory, root, split, options):
  """Annotations of one split; see the module docstring."""
  protocol = options['protocol']
  if protocol not in PROTOCOLS:
    raise ValueError(f'config.data.protocol={protocol!r}; Toyota Smarthome has {PROTOCOLS}.')
  common.check_split(split, split_names(directory, options), directory)
  clips = [(n, a, _split_of(protocol, p, c)) for n, a, p, c in _clips(directory)]
  if protocol == 'cs':
    class_names = sorted({a for _, a, _ in clips})
  else:  # only activities both views see can be tested across views
    class_names = sorted({a for _, a, s in clips if s == 'train'} &
                         {a for _, a, s in clips if s == 'test'})
  index = {a: i for i, a in enumerate(class_names)}
  records = [annotations.VideoRecord(os.path.splitext(n)[0], os.path.join(root, n), index[a],
                                     split)
             for n, a, s in clips if s == split and a in index]
  return common.finish(records, class_names, directory, root, split)
