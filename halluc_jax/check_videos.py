r"""Checks the videos of an annotation CSV: counts per problem, a JSON report, a cleaned CSV.

  python -m halluc_jax.check_videos --annotations data/x/annotations.csv [--root data/x]
      [--split train] [--workers 4] [--min_frames 16] [--report report.json]
      [--clean_out clean.csv] [--drop_warnings]

The problems and their thresholds: halluc_jax/data/video_check.py (README, 'Checking a
dataset's videos'). `--clean_out` keeps the rows without a blocking problem (missing,
no_video_stream, unreadable, too_short; with `--drop_warnings` also truncated, rotated, vfr,
odd_resolution) in the input's own layout, header and cells as written, so it can replace the
input. With `--split`, rows of the other splits are copied to it unchecked. The exit status is 0
whatever the videos hold; bad input (no CSV, unknown header or split) exits 1 with one line.
"""
import csv
import dataclasses
import json
import logging
import os

from absl import app
from absl import flags

from halluc_jax.data import annotations
from halluc_jax.data import video_check


def _selected(csv_path, header, rows, split):
  """The rows to check; raises ValueError for a split the CSV does not have."""
  if split is None or 'split' not in [c.strip() for c in header]:
    return rows  # Without a split column every row belongs to every split (annotations.py).
  present = sorted({r.split for r in rows})
  if split not in present:
    raise ValueError(f'{csv_path}: no rows for split {split!r} (splits present: {present}).')
  return [r for r in rows if r.split == split]


def summary_table(problem_counts, num_videos, num_kept):
  """The printed summary: one line per problem, then the totals."""
  lines = [f'{"problem":<16} {"videos":>7}  kind']
  for name, n in problem_counts.items():
    kind = 'blocking' if name in video_check.BLOCKING else 'warning'
    lines.append(f'{name:<16} {n:>7}  {kind}')
  lines.append(f'{num_videos} rows checked, {num_kept} kept, {num_videos - num_kept} dropped')
  return '\n'.join(lines)


def _class_note(csv_path, clean_out, all_labels, kept_labels):
  """A warning when the cleaned CSV would number its classes differently, else ''.

  Classes come from classes.txt beside a CSV, else from its sorted labels (annotations.py);
  `all_labels` and `kept_labels` are label cells, multi-label ones names joined by '|'.
  """
  if os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(clean_out)),
                                 annotations.CLASSES_FILE)):
    return ''
  if os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(csv_path)),
                                 annotations.CLASSES_FILE)):
    return (f'copy {annotations.CLASSES_FILE} beside {clean_out}: without it the classes are '
            'renumbered from the labels present')
  def names(cells):
    return {n.strip() for c in cells for n in c.split('|') if n.strip()}
  lost = names(all_labels) - names(kept_labels)
  return (f'{len(lost)} classes lose all their rows ({sorted(lost)[:5]}): the cleaned CSV '
          f'numbers its classes differently; write a {annotations.CLASSES_FILE}' if lost else '')


def run(csv_path, root, split, limits, workers, report_path, clean_out, drop_warnings):
  """Checks the CSV's videos, writes the outputs; returns the report dict."""
  root = root or os.path.dirname(os.path.abspath(csv_path))
  header, rows = annotations.read_table(csv_path, root)
  if not os.path.isdir(root):
    raise FileNotFoundError(f'Video root directory not found: {root!r}.')
  checked = _selected(csv_path, header, rows, split)
  results = video_check.check_paths([r.path for r in checked], limits, workers)
  videos = [{'line': r.line, 'video_id': r.video_id, 'split': r.split, 'path': r.path,
             **results[r.path]} for r in checked]
  kept = {r.line for r in checked if video_check.keeps(results[r.path], drop_warnings)}
  report = {'annotations': os.path.abspath(csv_path), 'root': os.path.abspath(root),
            'split': split, 'limits': dataclasses.asdict(limits), 'drop_warnings': drop_warnings,
            'num_checked': len(checked), 'num_kept': len(kept),
            'counts': video_check.counts(videos), 'videos': videos}
  print(summary_table(report['counts'], len(checked), len(kept)))
  if report_path:
    with open(report_path, 'w') as f:
      json.dump(report, f, indent=1)
  if clean_out:
    checked_lines = {r.line for r in checked}
    out_rows = [r for r in rows if r.line in kept or r.line not in checked_lines]
    with open(clean_out, 'w', newline='') as f:
      csv.writer(f, lineterminator='\n').writerows([header] + [r.cells for r in out_rows])
    if len(checked) < len(rows):
      print(f'{len(rows) - len(checked)} rows of other splits copied to {clean_out} unchecked')
    col = [c.strip() for c in header].index('label')
    def labels(rows):
      return [r.cells[col] if col < len(r.cells) else '' for r in rows]
    note = _class_note(csv_path, clean_out, labels(rows), labels(out_rows))
    if note:
      print(f'WARNING: {note}')
  return report


def _define_flags():
  """The flags; defined only when run as a program, so that importing `run` defines none."""
  flags.DEFINE_string('annotations', None, 'Annotation CSV (Kinetics or path,label[,split] '
                      'layout).')
  flags.DEFINE_string('root', None, "Directory the video paths are relative to; default the "
                      "CSV's directory.")
  flags.DEFINE_string('split', None, 'Check only this split (default: every row).')
  flags.DEFINE_integer('workers', min(8, os.cpu_count() or 1),
                       'Checking processes (0: in this process).')
  limits = video_check.Limits
  flags.DEFINE_integer('min_frames', limits.min_frames, 'Fewer frames is too_short (blocking).')
  flags.DEFINE_integer('min_side', limits.min_side, 'A shorter displayed side is odd_resolution.')
  flags.DEFINE_float('max_aspect', limits.max_aspect,
                     'A larger long/short side ratio is odd_resolution.')
  flags.DEFINE_integer('vfr_frames', limits.vfr_frames,
                       'Frames whose timestamps the vfr check compares.')
  flags.DEFINE_float('vfr_tolerance', limits.vfr_tolerance,
                     'Allowed spread of frame steps, as a fraction of their median.')
  flags.DEFINE_string('report', None, 'Write the per-video JSON report here.')
  flags.DEFINE_string('clean_out', None, 'Write the cleaned annotation CSV here.')
  flags.DEFINE_bool('drop_warnings', False, 'Also drop rows with warnings from --clean_out.')
  flags.mark_flags_as_required(['annotations'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.getLogger().setLevel(logging.ERROR)  # The reader's warnings: in the report already.
  f = flags.FLAGS
  limits = video_check.Limits(f.min_frames, f.min_side, f.max_aspect, f.vfr_frames,
                              f.vfr_tolerance)
  try:
    run(f.annotations, f.root, f.split, limits, f.workers, f.report, f.clean_out,
        f.drop_warnings)
  except (ValueError, OSError) as e:
    raise SystemExit(f'FATAL: {e}') from e


if __name__ == '__main__':
  _define_flags()
  app.run(main)
