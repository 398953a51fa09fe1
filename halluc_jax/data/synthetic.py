"""The embedded 'synthetic actions' dataset: real H.264 clips in the Kinetics CSV layout.

Writes, under `out_dir`:

  annotations.csv   label,youtube_id,time_start,time_end,split   (written last: its presence
                    means the dataset is complete)
  classes.txt       one class name per line; line number = label index
  metadata.jsonl    per video: id, class, split, fps, num_frames, size, per-frame object boxes
  train/<id>_<time_start:06d>_<time_end:06d>.mp4, val/...   (the Kinetics-downloader layout)

Video i is rendered from `SeedSequence([seed, i])`, so the output does not depend on the number
of workers, and the same seed gives byte-identical files. The classes (see
`synthetic_classes.CLASSES` and data/README.md) are invariant to horizontal flips and are told
apart only by motion over time.

Usage:
  python -m halluc_jax.data.synthetic --out data/synthetic_actions [--num_videos 360 --size 96
      --seed 0 --min_frames 16 --max_frames 48 --workers 2]
"""
import csv
import json
import math
import multiprocessing
import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from halluc_jax.data import synthetic_classes
from halluc_jax.data import synthetic_render

CLASS_NAMES = synthetic_classes.CLASS_NAMES
CSV_HEADER = ('label', 'youtube_id', 'time_start', 'time_end', 'split')
VAL_FRACTION = 0.25


def video_id(index):
  return f'syn_{index:06d}'


def video_relpath(split, youtube_id, time_start, time_end):
  """Path of a clip relative to the dataset root, as the Kinetics downloaders lay it out."""
  return os.path.join(split, f'{youtube_id}_{int(time_start):06d}_{int(time_end):06d}.mp4')


def plan(num_videos, seed):
  """Balanced labels in shuffled order and a per-class stratified train/val split.

  Returns:
    (labels, splits): two lists of length num_videos (class names, 'train' / 'val').
  """
  rng = np.random.default_rng([seed, 0x5EED])
  labels = [CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(num_videos)]
  labels = [labels[i] for i in rng.permutation(num_videos)]
  splits = ['train'] * num_videos
  for name in CLASS_NAMES:
    members = [i for i, lab in enumerate(labels) if lab == name]
    if len(members) < 2:
      logging.warning('synthetic: class %r has %d video(s); it will be missing from a split',
                      name, len(members))
      continue
    num_val = min(len(members) - 1, max(1, round(VAL_FRACTION * len(members))))
    for i in rng.choice(members, size=num_val, replace=False):
      splits[i] = 'val'
  return labels, splits


def _render_one(job):
  """Renders and writes video `index`; returns its CSV row and metadata (worker entry point)."""
  out_dir, index, label, split, size, seed, min_frames, max_frames = job
  rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
  fps = int(rng.choice(synthetic_render.FPS_CHOICES))
  num_frames = int(rng.integers(min_frames, max_frames + 1))
  frames, objects = synthetic_render.render_clip(label, rng, size, num_frames)
  vid = video_id(index)
  time_end = math.ceil(num_frames / fps)
  rel = video_relpath(split, vid, 0, time_end)
  synthetic_render.write_mp4(os.path.join(out_dir, rel), frames, fps)
  row = (label, vid, 0, time_end, split)
  meta = {'id': vid, 'class': label, 'label': CLASS_NAMES.index(label), 'split': split,
          'path': rel, 'fps': fps, 'num_frames': num_frames, 'size': size,
          'duration': num_frames / fps, 'objects': objects}
  return row, meta


def _validate(num_videos, size, min_frames, max_frames, workers):
  if num_videos < len(CLASS_NAMES):
    raise ValueError(f'num_videos={num_videos}: need at least one per class '
                     f'({len(CLASS_NAMES)} classes)')
  if size < 24 or size % 2:
    raise ValueError(f'size={size}: must be even (yuv420p) and >= 24')
  if not 2 <= min_frames <= max_frames:
    raise ValueError(f'min_frames={min_frames}, max_frames={max_frames}: '
                     'need 2 <= min_frames <= max_frames')
  if workers < 1:
    raise ValueError(f'workers={workers}: must be >= 1')


def generate(out_dir, num_videos=360, size=96, seed=0, min_frames=16, max_frames=48, workers=1):
  """Generates the dataset (see module docstring) and returns the path of annotations.csv.

  Args:
    out_dir: dataset root; created if needed. Existing files of the same names are replaced.
    num_videos: total clips, balanced over the classes.
    size: frame side in pixels (even).
    seed: master seed; video i depends only on (seed, i).
    min_frames, max_frames: clip length range (inclusive), uniform per clip.
    workers: processes rendering in parallel (1 = in this process).

  Returns:
    The path of the written annotations.csv.
  """
  _validate(num_videos, size, min_frames, max_frames, workers)
  start = time.time()
  labels, splits = plan(num_videos, seed)
  for split in set(splits):
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
  jobs = [(str(out_dir), i, labels[i], splits[i], size, seed, min_frames, max_frames)
          for i in range(num_videos)]
  if workers == 1:
    results = [_render_one(job) for job in jobs]
  else:
    # spawn, not fork: the caller may have started threads (JAX, grain) that fork would copy.
    with multiprocessing.get_context('spawn').Pool(workers) as pool:
      results = pool.map(_render_one, jobs, chunksize=max(1, num_videos // (8 * workers)))

  with open(os.path.join(out_dir, 'classes.txt'), 'w') as f:
    f.write(''.join(name + '\n' for name in CLASS_NAMES))
  with open(os.path.join(out_dir, 'metadata.jsonl'), 'w') as f:
    for _, meta in results:
      f.write(json.dumps(meta, separators=(',', ':')) + '\n')
  csv_path = os.path.join(out_dir, 'annotations.csv')
  with open(csv_path + '.tmp', 'w', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(CSV_HEADER)
    writer.writerows(row for row, _ in results)
  os.replace(csv_path + '.tmp', csv_path)
  logging.info('synthetic: wrote %d videos (%d classes, %dpx) to %s in %.1fs', num_videos,
               len(CLASS_NAMES), size, out_dir, time.time() - start)
  return csv_path


def _define_flags():
  """CLI flags, defined only when run as a script so importers' flags never clash."""
  flags.DEFINE_string('out', None, 'Dataset root to write.', required=True)
  flags.DEFINE_integer('num_videos', 360, 'Number of clips, balanced over classes.')
  flags.DEFINE_integer('size', 96, 'Frame side in pixels (even).')
  flags.DEFINE_integer('seed', 0, 'Master seed.')
  flags.DEFINE_integer('min_frames', 16, 'Shortest clip, frames.')
  flags.DEFINE_integer('max_frames', 48, 'Longest clip, frames.')
  flags.DEFINE_integer('workers', min(4, os.cpu_count() or 1), 'Rendering processes.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  try:
    _validate(f.num_videos, f.size, f.min_frames, f.max_frames, f.workers)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  print(generate(f.out, f.num_videos, f.size, f.seed, f.min_frames, f.max_frames, f.workers))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
