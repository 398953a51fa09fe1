"""Readers of the paper's datasets in their official annotation formats.

`read(config.data, split)` gives the `annotations.Annotations` of one split for the format named
by config.data.format: 'csv' (the Kinetics / generic CSVs of data/annotations.py) or one module
here per dataset. Every reader gives the same records, so training code does not change with
the dataset. The format-specific settings a reader takes (`options`):

  split_index        HMDB-51, UCF-101: official split 1..3; MPII Cooking cv7: fold 1..7
  protocol           Toyota Smarthome: 'cs' | 'cv1' | 'cv2'; YUP++: 'static' | 'moving';
                     MPII Cooking: 'cv7' | 'official'
  label_field        EPIC-Kitchens: 'verb' | 'noun' | 'action'
  val_participants   EPIC-Kitchens: participants of the 'val' split
  multi_label        Charades (must be True); MPII Cooking (True for its mAP)
"""
from halluc_jax.data import annotations
from halluc_jax.data.datasets import charades
from halluc_jax.data.datasets import epic_kitchens55
from halluc_jax.data.datasets import hmdb51
from halluc_jax.data.datasets import mpii_cooking
from halluc_jax.data.datasets import ssv2
from halluc_jax.data.datasets import tfds_pack
from halluc_jax.data.datasets import toyota_smarthome
from halluc_jax.data.datasets import ucf101
from halluc_jax.data.datasets import yupp

CSV = 'csv'
READERS = {
    'hmdb51': hmdb51,
    'ucf101': ucf101,
    'ssv2': ssv2,
    'charades': charades,
    'epic_kitchens55': epic_kitchens55,
    'toyota_smarthome': toyota_smarthome,
    'yupp': yupp,
    'mpii_cooking': mpii_cooking,
}
FORMATS = (CSV,) + tuple(READERS)
TFDS = 'tfds'  # config.data.source = 'tfds:<name>': a pack of any of them (tfds_pack.py)


def format_of(data):
  """config.data.format ('csv' when absent: configs from before the key)."""
  name = str(data.get('format', CSV) or CSV)
  if name not in FORMATS:
    raise ValueError(f'config.data.format={name!r}; known formats: {FORMATS}.')
  return name


def options_of(data):
  """The format settings of config.data, as a sorted tuple of (key, value) (hashable)."""
  return (('label_field', str(data.get('label_field', 'verb'))),
          ('multi_label', bool(data.get('multi_label', False))),
          ('protocol', str(data.get('protocol', ''))),
          ('split_index', int(data.get('split_index', 1))),
          ('val_participants', tuple(data.get('val_participants', ()) or ())))


def location_of(data):
  """(format, annotation source, video root) of config.data: its annotation files, or for
  config.data.source = 'tfds:<name>' ('tfds', the pack's folder, config.data.tfds_data_dir)."""
  source = str(data.get('source', '') or '')
  if source.startswith(tfds_pack.PREFIX):
    data_dir = str(data.get('tfds_data_dir', '') or '')
    return TFDS, tfds_pack.pack_folder(source, data_dir), data_dir
  if source:
    raise ValueError(f"config.data.source={source!r}; expected '' (the files of "
                     "config.data.format) or 'tfds:<name>' (a TFDS pack).")
  return format_of(data), str(data.annotations), str(data.root)


def read_split(fmt, source, root, split, options):
  """Annotations of one split of `source` (config.data.annotations) in format `fmt`."""
  options = dict(options)
  if fmt == CSV:
    return annotations.read_annotations(source, root, split, options['multi_label'])
  if fmt == TFDS:
    return tfds_pack.read(source, root, split, options)
  return READERS[fmt].read(source, root, split, options)


def split_names_of(fmt, source, options):
  """The split names `source` holds in format `fmt`."""
  if fmt == CSV:
    return annotations.split_names(source)
  if fmt == TFDS:
    return tfds_pack.split_names(source, options)
  return READERS[fmt].split_names(source, dict(options))


def read(data, split):
  """Annotations of one split for config.data (no caching: pipeline.read_split caches)."""
  fmt, source, root = location_of(data)
  return read_split(fmt, source, root, split, options_of(data))


def split_names(data):
  """The split names of config.data's dataset."""
  fmt, source, _ = location_of(data)
  return split_names_of(fmt, source, options_of(data))
