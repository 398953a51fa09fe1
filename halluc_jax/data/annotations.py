"""Annotation CSVs -> per-split lists of video records.

Two layouts are read; the header row decides which:

1. Kinetics layout, header `label,youtube_id,time_start,time_end,split` (column order free,
   extra columns ignored). The file of a row is
   `<root>/<split>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4` and its video id is that
   file's stem, e.g. `abc123_000010_000020`.
2. Generic layout, header `path,label[,split]`, for any other dataset. `path` is relative to
   `root` (absolute paths also work) and the video id is that path without its extension,
   e.g. `train/clip_0001`. Without a `split` column every row belongs to every split, so use one
   CSV per split (config.data.annotations) or add the column.

Classes: `classes.txt` next to the CSV (one name per line, line number = class index) when it
exists; otherwise the sorted unique label names over ALL rows of the CSV, so train and eval
splits agree on indices. With `multi_label`, a `label` cell may hold several names separated by
`|` (Charades-like); the record's label is then a tuple of class indices.

Rows whose video file is missing are dropped and reported once per (CSV, split) and process as
a single warning with their number and the first few paths. A missing CSV or root, an unknown
label, or a split with no usable rows is an error naming the path.
"""
import csv
import logging
import os
from typing import NamedTuple

CLASSES_FILE = 'classes.txt'
KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')
GENERIC_COLUMNS = ('path', 'label')
MULTI_LABEL_SEPARATOR = '|'
_NUM_EXAMPLES_REPORTED = 5
_reported_missing = set()  # (csv, root, split) already warned about in this process


class VideoRecord(NamedTuple):
  """One annotated video.

  Attributes:
    video_id: unique id; also the key of the video's auxiliary targets.
    path: absolute or root-joined path of the video file.
    label: class index, or a tuple of class indices when multi-label.
    split: the split name the row belongs to ('' when the CSV has none).
    start_s: start of the segment in seconds when the record is a segment of a longer video
      (EPIC-Kitchens); None = the whole video.
    end_s: end of the segment in seconds (exclusive); None = to the end of the video.
  """
  video_id: str
  path: str
  label: int | tuple[int, ...]
  split: str
  start_s: float | None = None
  end_s: float | None = None


class Annotations(NamedTuple):
  """Result of `read_annotations`: usable records, class names and the dropped rows."""
  records: list[VideoRecord]
  class_names: list[str]
  missing_paths: list[str]


def _read_rows(csv_path):
  if not os.path.isfile(csv_path):
    raise FileNotFoundError(f'Annotation CSV not found: {csv_path!r} (config.data.annotations).')
  with open(csv_path, newline='') as f:
    reader = csv.DictReader(f)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    rows = [{k: (v or '').strip() for k, v in row.items() if k is not None} for row in reader]
  return _layout(csv_path, columns), rows


def _layout(csv_path, columns):
  if all(c in columns for c in KINETICS_COLUMNS):
    return 'kinetics'
  if all(c in columns for c in GENERIC_COLUMNS):
    return 'generic'
  raise ValueError(f'{csv_path}: header {columns} matches neither the Kinetics layout '
                   f'{",".join(KINETICS_COLUMNS)} nor the generic layout path,label[,split].')


def _label_names(cell, multi_label):
  if multi_label:
    return [n.strip() for n in cell.split(MULTI_LABEL_SEPARATOR) if n.strip()]
  return [cell]


def read_class_names(csv_path, rows=None, multi_label=False):
  """Class names in index order: `classes.txt` beside the CSV, else sorted labels of the CSV."""
  classes_path = os.path.join(os.path.dirname(os.path.abspath(csv_path)), CLASSES_FILE)
  if os.path.isfile(classes_path):
    with open(classes_path) as f:
      names = [line.strip() for line in f if line.strip()]
    if len(set(names)) != len(names):
      raise ValueError(f'{classes_path}: duplicate class names.')
    return names
  if rows is None:
    rows = _read_rows(csv_path)[1]
  return sorted({n for r in rows for n in _label_names(r['label'], multi_label) if n})


def _video_path_and_id(layout, row, root):
  if layout == 'kinetics':
    stem = (f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_"
            f"{int(float(row['time_end'])):06d}")
    return os.path.join(root, row['split'], stem + '.mp4'), stem
  video_id = os.path.splitext(row['path'])[0]
  return os.path.join(root, row['path']), video_id


class TableRow(NamedTuple):
  """One data row of an annotation CSV, with its cells as written (see `read_table`)."""
  line: int
  cells: list[str]
  path: str
  video_id: str
  split: str


def read_table(csv_path, root):
  """Every data row of an annotation CSV with its video path, unfiltered and unchecked.

  For tools that rewrite the CSV in the input's own layout (a cleaned copy, check_videos).

  Returns:
    (header cells as written, list of TableRow in file order). Missing videos are kept.

  Raises:
    FileNotFoundError: no such CSV.
    ValueError: unknown header, or a Kinetics row whose times are not numbers.
  """
  if not os.path.isfile(csv_path):
    raise FileNotFoundError(f'Annotation CSV not found: {csv_path!r}.')
  with open(csv_path, newline='') as f:
    table = [r for r in csv.reader(f)]
  header = table[0] if table else []
  columns = [c.strip() for c in header]
  layout = _layout(csv_path, columns)
  rows = []
  for line, cells in enumerate(table[1:], start=2):
    if not any(c.strip() for c in cells):
      continue  # Blank line.
    row = {k: v.strip() for k, v in zip(columns, cells)}
    try:
      path, video_id = _video_path_and_id(layout, row, root)
    except (KeyError, ValueError) as e:
      raise ValueError(f'{csv_path} line {line}: malformed row {cells} ({e!r}).') from None
    rows.append(TableRow(line, cells, path, video_id, row.get('split', '')))
  return header, rows


def split_names(csv_path):
  """The split names an annotation CSV uses (empty when it has no split column)."""
  _, rows = _read_rows(csv_path)
  return sorted({r['split'] for r in rows if r.get('split')})


def read_annotations(csv_path, root, split, multi_label=False):
  """Reads one split of an annotation CSV; see the module docstring for the layouts.

  Args:
    csv_path: the annotation CSV.
    root: directory the video paths are relative to.
    split: split name to keep (e.g. 'train'); rows of other splits are skipped.
    multi_label: parse `a|b|c` label cells into tuples of class indices.

  Returns:
    Annotations(records, class_names, missing_paths); records keep CSV order.

  Raises:
    FileNotFoundError: the CSV or the root directory does not exist.
    ValueError: unknown header, unknown label, or no usable row for the split.
  """
  layout, rows = _read_rows(csv_path)
  if not os.path.isdir(root):
    raise FileNotFoundError(f'Video root directory not found: {root!r} (config.data.root), '
                            f'needed by {csv_path}.')
  class_names = read_class_names(csv_path, rows, multi_label)
  class_index = {n: i for i, n in enumerate(class_names)}
  has_split = layout == 'kinetics' or any('split' in r for r in rows[:1])
  split_rows = [(n, r) for n, r in enumerate(rows, start=2)
                if not has_split or r.get('split') == split]
  if not split_rows:
    splits = sorted({r.get('split', '') for r in rows})
    raise ValueError(f'{csv_path}: no rows for split {split!r} (splits present: {splits}).')

  records, missing = [], []
  for line, row in split_rows:
    names = _label_names(row['label'], multi_label)
    unknown = [n for n in names if n not in class_index]
    if unknown or not names:
      raise ValueError(f'{csv_path} line {line}: label {row["label"]!r} is not a known class '
                       f'({len(class_names)} classes, see {CLASSES_FILE} beside the CSV).')
    path, video_id = _video_path_and_id(layout, row, root)
    if not os.path.isfile(path):
      missing.append(path)
      continue
    label = tuple(class_index[n] for n in names) if multi_label else class_index[names[0]]
    records.append(VideoRecord(video_id, path, label, row.get('split', '')))
  if not records:
    raise ValueError(f'{csv_path}: all {len(missing)} videos of split {split!r} are missing '
                     f'under {root!r} (first: {missing[0]!r}).')
  return Annotations(records, class_names, missing)


def report_missing(result, csv_path, root, split):
  """Logs the dropped rows of a `read_annotations` result, once per (CSV, root, split)."""
  key = (os.path.abspath(csv_path), os.path.abspath(root), split)
  if result.missing_paths and key not in _reported_missing:
    _reported_missing.add(key)
    logging.warning('%s split %r: %d of %d videos missing under %s and skipped; first: %s',
                    csv_path, split, len(result.missing_paths),
                    len(result.missing_paths) + len(result.records), root,
                    result.missing_paths[:_NUM_EXAMPLES_REPORTED])


def load_annotations(csv_path, root, split, multi_label=False):
  """Records of one split; missing files are dropped with one warning per process.

  Args: as `read_annotations`.

  Returns:
    list of VideoRecord(video_id, path, label, split), in CSV order.
  """
  result = read_annotations(csv_path, root, split, multi_label)
  report_missing(result, csv_path, root, split)
  return result.records
