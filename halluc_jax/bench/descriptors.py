"""Cost of each target-extraction stage, next to the paper's quoted costs (docs/method.md §8.4).

  python -m halluc_jax.bench.descriptors [--data_dir data/synthetic_objects --num_videos 8
      --frames_per_video 32 --long_frames 300 --config configs/default.py]

Two workloads: clips of the embedded dataset (generated into a temporary folder when
--data_dir has no annotations.csv) and one long synthetic video (--long_frames frames at
320x240, rendered with the dataset's renderer). Every built-in stream of config.extract.stream
is timed stage by stage: decoding, each detector, each saliency model, dense flow, and the
descriptor maths (ODF/SDF/HOF-MBH multi-moment + PN + count sketch). OpenCV runs on one thread,
so CPU seconds are single-core costs; wall seconds also count waiting on a busy machine.
Per-frame figures divide by the frames a stage processed (the J sampled frames; motion saliency
also decodes and feeds every frame up to the last sampled one, plus its warm-up).
"""
import collections
import os
import tempfile
import time

from absl import app
from absl import flags
import cv2
import numpy as np

from halluc_jax.targets import extract_video as ev
from halluc_jax.descriptors import flow as flow_lib
from halluc_jax.descriptors import odf, sdf
from halluc_jax.descriptors.sources import LABEL_SPACE

# Paper's seconds per frame (docs/method.md §8.4, Tables 11-12), for the stand-in each source plays.
PAPER = {'shape': ('DET1 IncV2', 0.07), 'hog': ('DET2 IncResV2', 0.38),
         'haar': ('DET3 Res101-AVA', 0.10), 'mser': ('DET4 NASNet', 0.91),
         'spectral': ('MNL', 0.60), 'fine_grained': ('MNL', 0.60), 'motion': ('ACLNet', 0.30)}


class Timer:
  """Accumulates (wall, cpu) seconds and processed frames per stage."""

  def __init__(self):
    self.wall, self.cpu = collections.Counter(), collections.Counter()
    self.frames = collections.Counter()

  def run(self, stage, frames, fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    self.wall[stage] += time.perf_counter() - wall
    self.cpu[stage] += time.process_time() - cpu
    self.frames[stage] += frames
    return out


def time_video(path, specs, frames_per_video, timer):
  """Runs every stage of every stream on one video, recording their costs."""
  clip = timer.run('decode (sampled frames)', frames_per_video, ev.read_clip, path, specs,
                   frames_per_video, 0)
  num_sampled = len(clip['indices'])
  timer.frames['decode (sampled frames)'] += num_sampled - frames_per_video
  for name, spec in specs.items():
    built, source = ev.sources_for(name, spec), spec['source']
    if source in ('shape', 'hog', 'haar', 'mser'):
      dets = timer.run(f'detector {source}', num_sampled, built, clip['frames'], clip['indices'])
      vec, _ = timer.run('maths ODF', num_sampled, odf.odf_descriptor, dets, clip['num_frames'],
                         len(LABEL_SPACE), built.class_score_dim)
    elif source == 'flow':
      flows = timer.run('flow DIS', num_sampled, lambda: np.stack([
          flow_lib.dense_flow(clip['frame_at'][a], clip['frame_at'][b], built[0])
          for a, b in clip['pairs']]))
      vec = timer.run('maths HOF/MBH', num_sampled, built[1].compute, flows)
    else:
      if source == 'motion':
        last = int(clip['indices'][-1])
        fed = last + 1 + built.warmup
        chunks = ev.consecutive_chunks(path, last, None)
        maps = timer.run('saliency motion (+decode)', fed, built, chunks, clip['indices'])
      else:
        maps = timer.run(f'saliency {source}', num_sampled, built, clip['frames'])
      vec = timer.run('maths SDF', num_sampled, sdf.sdf_descriptor, maps, 3)
    if vec is not None and np.any(vec):
      timer.run('maths PN + sketch', 0, ev.sketch_target, vec, spec)


def _long_video(directory, num_frames, seed=0):
  """Renders a num_frames-frame 320x240 clip of the embedded dataset's 'orbit' class."""
  from halluc_jax.data.synthetic import render as synthetic_render  # pylint: disable=g-import-not-at-top
  frames, _ = synthetic_render.render_clip('orbit', np.random.default_rng(seed), 320, num_frames)
  path = os.path.join(directory, f'long_{num_frames}.mp4')
  synthetic_render.write_mp4(path, np.ascontiguousarray(frames[:, 40:280]), fps=25)
  return path


def _dataset_videos(data_dir, num_videos, tmp):
  from halluc_jax.data import annotations, synthetic  # pylint: disable=g-import-not-at-top
  csv_path = os.path.join(data_dir, 'annotations.csv')
  if not os.path.isfile(csv_path):
    data_dir = os.path.join(tmp, 'synthetic_actions')
    csv_path = synthetic.generate(data_dir, num_videos=max(24, num_videos), size=96)
  records = annotations.load_annotations(csv_path, data_dir, 'train')
  return [r.path for r in records[:num_videos]], data_dir


def report(title, timer, num_videos):
  print(f'\n{title}')
  print(f'{"stage":28s} {"s/video":>9s} {"cpu s/video":>11s} {"s/frame":>9s} {"cpu s/frame":>11s}'
        f'   paper s/frame (stand-in for)')
  rank = ('decode', 'detector', 'saliency', 'flow', 'maths')
  stages = sorted(timer.wall, key=lambda st: rank.index(st.split(' ')[0]))
  for stage in stages + ['total']:
    wall = sum(timer.wall.values()) if stage == 'total' else timer.wall[stage]
    cpu = sum(timer.cpu.values()) if stage == 'total' else timer.cpu[stage]
    frames = timer.frames['decode (sampled frames)'] if stage == 'total' else timer.frames[stage]
    per_frame = f'{wall / frames:9.4f} {cpu / frames:11.4f}' if frames else f'{"":9s} {"":11s}'
    source = stage.split(' ')[1] if stage.startswith(('detector', 'saliency')) else ''
    paper = PAPER.get(source)
    note = f'   {paper[1]:.2f} ({paper[0]})' if paper else ''
    if stage == 'maths ODF':
      note = '   0.09 for all 4 detectors (SVD etc.)'
    elif stage == 'maths SDF':
      note = '   0.003'
    elif stage == 'total':
      note = '   2.36 (4 detectors + 2 saliency, ODF+SDF; per sampled frame here)'
    print(f'{stage:28s} {wall / num_videos:9.3f} {cpu / num_videos:11.3f} {per_frame}{note}')


def main(argv):
  del argv
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top,unused-import
  cv2.setNumThreads(1)
  f = flags.FLAGS
  specs = ev.built_in_specs(f.config)
  with tempfile.TemporaryDirectory() as tmp:
    paths, data_dir = _dataset_videos(f.data_dir, f.num_videos, tmp)
    for path in paths[:1]:  # warm-up: first calls build models and fill caches
      time_video(path, specs, f.frames_per_video, Timer())
    timer = Timer()
    for path in paths:
      time_video(path, specs, f.frames_per_video, timer)
    report(f'Embedded dataset ({data_dir}): {len(paths)} train clips, J <= '
           f'{f.frames_per_video} sampled frames, opencv {cv2.__version__}, 1 thread', timer,
           len(paths))
    long_path = _long_video(tmp, f.long_frames)
    timer = Timer()
    time_video(long_path, specs, f.frames_per_video, timer)
    report(f'Long video: {f.long_frames} frames at 320x240, J = {f.frames_per_video}', timer, 1)


if __name__ == '__main__':
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', 'configs/default.py', 'Config file (ml_collections).')
  flags.DEFINE_string('data_dir', 'data/synthetic_objects', 'Embedded dataset root.')
  flags.DEFINE_integer('num_videos', 8, 'Embedded-dataset clips to time.')
  flags.DEFINE_integer('frames_per_video', 32, 'J, frames sampled per video.')
  flags.DEFINE_integer('long_frames', 300, 'Frames of the long 320x240 video.')
  app.run(main)
