"""What every dataset reader shares: clear errors, line reading, and the missing-file check.

A reader turns a dataset's official annotation files into `annotations.Annotations`, the same
records the CSV reader gives, so the pipeline and the trainer do not know which format it was.
"""
import os

from halluc_jax.data import annotations


class FormatError(ValueError):
  """An annotation file does not have its dataset's format; the message names file and line."""

  def __init__(self, path, line, reason):
    where = f'{path} line {line}' if line else str(path)
    super().__init__(f'{where}: {reason}')


def require_file(path, what):
  """`path` if it is a file, else FileNotFoundError naming what it should hold."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} not found: {path!r} (config.data.annotations).')
  return path


def require_dir(path, key):
  """`path` if it is a directory, else FileNotFoundError naming the config key."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f'Directory not found: {path!r} ({key}).')
  return path


def first_existing(directory, names, what):
  """The first of `directory/<name>` that exists (datasets ship under more than one name)."""
  for name in names:
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f'{what} not found in {directory!r}: expected one of {list(names)} '
                          f'(config.data.annotations).')


def numbered_lines(path):
  """(1-based line number, stripped text) of the non-blank lines of a text file.

  The official lists come with Windows line ends (UCF-101) and trailing spaces (HMDB-51);
  both are stripped.
  """
  with open(path, encoding='utf-8-sig') as f:
    for number, line in enumerate(f, start=1):
      text = line.strip()
      if text:
        yield number, text


def parse_int(text, path, line, what):
  try:
    return int(text)
  except ValueError:
    raise FormatError(path, line, f'{what} {text!r} is not an integer') from None


def finish(candidates, class_names, source, root, split):
  """Annotations of the candidate records whose video file exists.

  Args:
    candidates: VideoRecords in annotation order (their files not yet checked).
    class_names: names in class-index order.
    source: the annotation file or directory (for messages).
    root: the video root (config.data.root).
    split: the split read (for messages).

  Raises:
    FileNotFoundError: the root does not exist.
    ValueError: the split has no rows, or none of its videos exists.
  """
  require_dir(root, 'config.data.root')
  if not candidates:
    raise ValueError(f'{source}: no annotated videos for split {split!r}.')
  records = [r for r in candidates if os.path.isfile(r.path)]
  missing = [r.path for r in candidates if not os.path.isfile(r.path)]
  if not records:
    raise ValueError(f'{source}: all {len(missing)} videos of split {split!r} are missing '
                     f'under {root!r} (first: {missing[0]!r}).')
  return annotations.Annotations(records, list(class_names), missing)


def check_split(split, known, source):
  if split not in known:
    raise ValueError(f'{source}: unknown split {split!r}; this format has {list(known)} '
                     f'(config.data.train_split / eval_split / test_split).')


def three_split_index(options, dataset):
  """config.data.split_index of a dataset published with train/test splits 1, 2 and 3."""
  index = int(options['split_index'])
  if index not in (1, 2, 3):
    raise ValueError(f'config.data.split_index={index}: {dataset} has splits 1, 2, 3.')
  return index


def fixed_split_names(splits):
  """A `split_names` reader for a dataset whose split names do not depend on its files."""
  def split_names(directory, options):
    del directory, options
    return list(splits)
  return split_names
