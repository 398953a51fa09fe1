"""The embedded 'synthetic actions' dataset: real H.264 clips in the Kinetics CSV layout.

Writes, under `out_dir`:

  annotations.csv   label,youtube_id,time_start,time_end,split   (written last: its presence
                    means the dataset is complete)
  classes.txt       one class name per line; line number = label index
  metadata.jsonl    per video: id, class, split, fps, num_frames, size, per-frame object boxes
  train/<id>_<time_start:06d>_<time_end:06d>.mp4, val/..., test/...   (the Kinetics layout)

Two class families share the scenes (data/README.md): 'objects' (`objects.py`: which kind
of object makes which motion; the cues the detectors, saliency and flow see carry the class) and
'motion' (`motion.py`: twelve motion/interaction classes told apart only by motion over
time; the harder one). A preset names a family with its default size, length and split.

Video i is rendered from `SeedSequence([seed, i])`, so the output does not depend on the number
of workers, and the same seed gives the same files.

Usage:
  python -m halluc_jax.data.synthetic --out data/synthetic_objects [--preset objects]
  python -m halluc_jax.data.synthetic --out data/synthetic_motion --preset motion
  (any of --num_videos --size --seed --min_frames --max_frames --val_fraction --test_fraction
   --workers overrides the preset)
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

from halluc_jax.data.synthetic import motion as synthetic_classes
from halluc_jax.data.synthetic import objects as synthetic_objects
from halluc_jax.data.synthetic import render as synthetic_render

CSV_HEADER = ('label', 'youtube_id', 'time_start', 'time_end', 'split')
# family name -> (class names, actor_tracks(class_name, rng, t))
FAMILIES = {
    'motion': (synthetic_classes.CLASS_NAMES, synthetic_classes.actor_tracks),
    'objects': (synthetic_objects.CLASS_NAMES, synthetic_objects.actor_tracks),
}
CLASS_NAMES = synthetic_classes.CLASS_NAMES  # the motion family (generate's default)
# The CLI's presets; `generate`'s own defaults are the motion family with a train/val split.
PRESETS = {
    'objects': dict(family='objects', num_videos=480, size=96, min_frames=24, max_frames=48,
                    val_fraction=0.2, test_fraction=0.2),
    'motion': dict(family='motion', num_videos=480, size=96, min_frames=24, max_frames=48,
                   val_fraction=0.2, test_fraction=0.2),
}


def video_id(index):
  return f'syn_{index:06d}'


def video_relpath(split, youtube_id, time_start, time_end):
  """Path of a clip relative to the dataset root, as the Kinetics downloaders lay it out."""
  return os.path.join(split, f'{youtube_id}_{int(time_start):06d}_{int(time_end):06d}.mp4')


def labels_and_splits(num_videos, seed, class_names=CLASS_NAMES, val_fraction=0.25, test_fraction=0.0):
  """Balanced labels in shuffled order and a per-class stratified train/val[/test] split.

  Each held-out split takes round(fraction x class size) clips of every class (at least one
  when its fraction is > 0), and at least one clip of every class stays in train.

  Returns:
    (labels, splits): two lists of length num_videos (class names, 'train' / 'val' / 'test').
  """
  rng = np.random.default_rng([seed, 0x5EED])
  labels = [class_names[i % len(class_names)] for i in range(num_videos)]
  labels = [labels[i] for i in rng.permutation(num_videos)]
  splits = ['train'] * num_videos
  held_out = [(split, f) for split, f in (('val', val_fraction), ('test', test_fraction)) if f > 0]
  for name in class_names:
    members = [i for i, lab in enumerate(labels) if lab == name]
    if len(members) < 1 + len(held_out):
      logging.warning('synthetic: class %r has %d video(s); it will be missing from a split',
                      name, len(members))
      continue
    counts = [max(1, round(f * len(members))) for _, f in held_out]
    while sum(counts) > len(members) - 1:  # keep a train clip: shrink the largest held-out split
      counts[int(np.argmax(counts))] -= 1
    order = rng.permutation(members)
    for (split, _), start, count in zip(held_out, np.cumsum([0] + counts), counts):
      for i in order[start:start + count]:
        splits[i] = split
  return labels, splits


def _render_one(job):
  """Renders and writes video `index`; returns its CSV row and metadata (worker entry point)."""
  out_dir, family, index, label, split, size, seed, min_frames, max_frames = job
  class_names, actor_tracks = FAMILIES[family]
  rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
  fps = int(rng.choice(synthetic_render.FPS_CHOICES))
  num_frames = int(rng.integers(min_frames, max_frames + 1))
  frames, objects = synthetic_render.render_clip(label, rng, size, num_frames, actor_tracks)
  vid = video_id(index)
  time_end = math.ceil(num_frames / fps)
  rel = video_relpath(split, vid, 0, time_end)
  synthetic_render.write_mp4(os.path.join(out_dir, rel), frames, fps)
  row = (label, vid, 0, time_end, split)
  meta = {'id': vid, 'class': label, 'label': class_names.index(label), 'split': split,
          'path': rel, 'fps': fps, 'num_frames': num_frames, 'size': size,
          'duration': num_frames / fps, 'objects': objects}
  return row, meta


def _validate(num_videos, size, min_frames, max_frames, workers, family='motion',
              val_fraction=0.25, test_fraction=0.0):
  if family not in FAMILIES:
    raise ValueError(f'family={family!r}: expected one of {sorted(FAMILIES)}')
  num_classes = len(FAMILIES[family][0])
  if num_videos < num_classes:
    raise ValueError(f'num_videos={num_videos}: need at least one per class '
                     f'({num_classes} classes)')
  if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
    raise ValueError(f'val_fraction={val_fraction}, test_fraction={test_fraction}: need two '
                     'fractions >= 0 that sum to less than 1')
  if size < 24 or size % 2:
    raise ValueError(f'size={size}: must be even (yuv420p) and >= 24')
  if not 2 <= min_frames <= max_frames:
    raise ValueError(f'min_frames={min_frames}, max_frames={max_frames}: '
                     'need 2 <= min_frames <= max_frames')
  if workers < 1:
    raise ValueError(f'workers={workers}: must be >= 1')


def generate(out_dir, num_videos=360, size=96, seed=0, min_frames=16, max_frames=48, workers=1,
             family='motion', val_fraction=0.25, test_fraction=0.0):
  """Generates the dataset (see module docstring) and returns the path of annotations.csv.

  Args:
    out_dir: dataset root; created if needed. Existing files of the same names are replaced.
    num_videos: total clips, balanced over the classes.
    size: frame side in pixels (even).
    seed: master seed; video i depends only on (seed, i).
    min_frames, max_frames: clip length range (inclusive), uniform per clip.
    workers: processes rendering in parallel (1 = in this process).
    family: class family, a key of FAMILIES ('motion' or 'objects').
    val_fraction, test_fraction: share of every class held out as 'val' / 'test'.

  Returns:
    The path of the written annotations.csv.
  """
  _validate(num_videos, size, min_frames, max_frames, workers, family, val_fraction,
            test_fraction)
  class_names = FAMILIES[family][0]
  start = time.time()
  labels, splits = labels_and_splits(num_videos, seed, class_names, val_fraction, test_fraction)
  for split in set(splits):
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
  jobs = [(str(out_dir), family, i, labels[i], splits[i], size, seed, min_frames, max_frames)
          for i in range(num_videos)]
  if workers == 1:
    results = [_render_one(job) for job in jobs]
  else:
    # spawn, not fork: the caller may have started threads (JAX, grain) that fork would copy.
    with multiprocessing.get_context('spawn').Pool(workers) as pool:
      results = pool.map(_render_one, jobs, chunksize=max(1, num_videos // (8 * workers)))

  with open(os.path.join(out_dir, 'classes.txt'), 'w') as f:
    f.write(''.join(name + '\n' for name in class_names))
  with open(os.path.join(out_dir, 'metadata.jsonl'), 'w') as f:
    for _, meta in results:
      f.write(json.dumps(meta, separators=(',', ':')) + '\n')
  csv_path = os.path.join(out_dir, 'annotations.csv')
  with open(csv_path + '.tmp', 'w', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(CSV_HEADER)
    writer.writerows(row for row, _ in results)
  os.replace(csv_path + '.tmp', csv_path)
  logging.info('synthetic: wrote %d %r videos (%d classes, %dpx) to %s in %.1fs', num_videos,
               family, len(class_names), size, out_dir, time.time() - start)
  return csv_path


_PRESET_FLAGS = ('num_videos', 'size', 'min_frames', 'max_frames', 'val_fraction',
                 'test_fraction')


def define_flags():
  """CLI flags, defined only when run as a script so importers' flags never clash.

  Flags left unset take the preset's value.
  """
  flags.DEFINE_string('out', None, 'Dataset root to write.', required=True)
  flags.DEFINE_enum('preset', 'objects', sorted(PRESETS), 'Class family + default sizes.')
  flags.DEFINE_integer('num_videos', None, 'Number of clips, balanced over classes.')
  flags.DEFINE_integer('size', None, 'Frame side in pixels (even).')
  flags.DEFINE_integer('seed', 0, 'Master seed.')
  flags.DEFINE_integer('min_frames', None, 'Shortest clip, frames.')
  flags.DEFINE_integer('max_frames', None, 'Longest clip, frames.')
  flags.DEFINE_float('val_fraction', None, 'Share of every class in the val split.')
  flags.DEFINE_float('test_fraction', None, 'Share of every class in the test split.')
  flags.DEFINE_integer('workers', min(4, os.cpu_count() or 1), 'Rendering processes.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  kwargs = dict(PRESETS[f.preset])
  kwargs.update({k: getattr(f, k) for k in _PRESET_FLAGS if getattr(f, k) is not None})
  kwargs.update(seed=f.seed, workers=f.workers)
  try:
    _validate(kwargs['num_videos'], kwargs['size'], kwargs['min_frames'], kwargs['max_frames'],
              kwargs['workers'], kwargs['family'], kwargs['val_fraction'],
              kwargs['test_fraction'])
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  print(generate(f.out, **kwargs))
