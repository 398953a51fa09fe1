"""Input-pipeline throughput: the grain train pipeline vs a plain PyAV loop (and decord).

Prints training clips/s of `pipeline.make_train_dataset` with 0, 1 and 2 worker processes (each
worker count twice: batches pickled through a pipe, the default, and through grain's shared
memory, `config.data.worker_shared_memory`), and
of a plain single-process loop over the same clips (probe + sample + read_frames + the same
random-resized crop, flip and normalisation, no grain), with each figure's ratio to the plain
loop. Two more plain loops over the same clips and frame indices: PyAV with the other
`config.data.rgb_conversion` (swscale's or OpenCV's YUV -> RGB, data/frame_rgb.py), and, when decord
(the decoder mmaction2 and VideoMAE users pick; `pip install decord`, not a dependency) is
importable, decord's `VideoReader.get_batch` in place of PyAV, resized to the same short side
with the pipeline's `transforms.resize_short`, then the same augmentation. Start-up (first batch:
spawning workers, opening files) is timed apart from the steady state, which is measured over
the following `--num_batches` batches.

With `--tfds_names` the same grain pipeline also reads TFDS packs of the dataset
(data/tfds_builder.py, `config.data.source = 'tfds:<name>'`), side by side with the mp4 folder
at each worker count, and the disk size of the folder's videos and of each pack is printed.

Usage:
  python -m halluc_jax.data.synthetic --out /tmp/syn
  python -m halluc_jax.bench.input --data_dir /tmp/syn [--num_batches 20 --batch_size 8
      --config configs/default.py --config.data.num_frames 16]
      [--tfds_names objects_s0,objects_s72 --tfds_data_dir data/tfds]
"""
import functools
import os
import time

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

from halluc_jax.data import clips
from halluc_jax.data import pipeline
from halluc_jax.data import sampling
from halluc_jax.data import transforms
from halluc_jax.data import video


_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'default.py')


def bench_config(config, data_dir, batch_size, read_threads):
  """`config` pointed at `data_dir`, without auxiliary targets."""
  config = config.copy_and_resolve_references()
  config.data.root = data_dir
  config.data.annotations = os.path.join(data_dir, 'annotations.csv')
  config.data.aux_dir = ''
  config.data.batch_size = batch_size
  config.data.read_threads = read_threads
  return config


def _forget_probes():
  # video.probe caches per process; clearing it gives every in-process setting the cold start
  # that freshly spawned workers have.
  cache_clear = getattr(getattr(video, '_probe_cached', None), 'cache_clear', None)
  if cache_clear:
    cache_clear()


def time_pipeline(config, num_workers, num_batches, shared_memory=False):
  """(start-up seconds, steady clips/s) of the grain train pipeline."""
  config.data.num_workers = num_workers
  config.data.worker_shared_memory = shared_memory
  _forget_probes()
  start = time.perf_counter()
  it = pipeline.make_train_dataset(config, process_index=0, process_count=1)
  next(it)
  startup = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(num_batches):
    batch = next(it)
  elapsed = time.perf_counter() - start
  pipeline.close(it)
  return startup, num_batches * batch['video'].shape[0] / elapsed


def _pyav_clip(record, spec, rng):
  num_frames = video.probe(record.path).num_frames
  indices = sampling.sample_indices(spec.sampling, num_frames, spec.num_frames,
                                    spec.frame_stride, rng)
  return clips.decode_clip(record.path, indices, spec.resize_short, spec.rgb_conversion)


def _decord_clip(decord, record, spec, rng):
  reader = decord.VideoReader(record.path, num_threads=1)
  indices = sampling.sample_indices(spec.sampling, len(reader), spec.num_frames,
                                    spec.frame_stride, rng)
  frames = reader.get_batch(list(indices)).asnumpy()
  return transforms.resize_short(frames, spec.resize_short) if spec.resize_short else frames


def time_plain_loop(config, num_clips, seed=0, decode=_pyav_clip):
  """Steady clips/s of a plain sample + decode + augment loop in this process; `decode`
  (record, spec, rng) -> uint8 frames is PyAV's reader unless given."""
  spec = clips.ClipSpec.from_config(config.data)
  records = pipeline.load_split(config, config.data.train_split)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(records))
  _forget_probes()
  start = time.perf_counter()
  for i in range(num_clips):
    frames = decode(records[order[i % len(order)]], spec, rng)
    clips.augment_train_clip(frames, rng, spec)
  return num_clips / (time.perf_counter() - start)


def time_decord_loop(config, num_clips, seed=0):
  """Steady clips/s of the plain loop decoding with decord; None when decord is absent."""
  try:
    import decord  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return time_plain_loop(config, num_clips, seed, functools.partial(_decord_clip, decord))


def _folder_mib(paths):
  return sum(os.path.getsize(p) for p in paths) / 2**20


def disk_sizes(config, names, data_dir):
  """{'mp4 folder' | 'tfds:<name>': MiB}: the videos of every split, and each pack's files."""
  records = [r for split in pipeline.split_names(config)
             for r in pipeline.load_split(config, split)]
  sizes = {'mp4 folder': _folder_mib({r.path for r in records})}
  for name in names:
    folder = os.path.join(data_dir, name)
    sizes[f'tfds:{name}'] = _folder_mib([os.path.join(d, f) for d, _, files in os.walk(folder)
                                         for f in files])
  return sizes


def print_packs(config, names, data_dir, workers, num_batches):
  """The grain pipeline on the folder and on each pack, per worker count; then disk sizes."""
  print(f'{"source":<26}{"workers":>8}{"start-up s":>11}{"clips/s":>10}{"vs folder":>10}')
  for count in workers:
    folder = None
    for name in [''] + list(names):
      packed = config.copy_and_resolve_references()
      packed.data.source = f'tfds:{name}' if name else ''
      packed.data.tfds_data_dir = data_dir
      startup, rate = time_pipeline(packed, count, num_batches)
      folder = folder or rate
      label = f'tfds:{name}' if name else 'mp4 folder'
      print(f'{label:<26}{count:>8}{startup:>11.2f}{rate:>10.1f}{rate / folder:>10.2f}')
  sizes = disk_sizes(config, names, data_dir)
  for label, mib in sizes.items():
    print(f'disk {label:<21}{mib:>10.2f} MiB{mib / sizes["mp4 folder"]:>10.2f}x')


def _define_flags():
  config_flags.DEFINE_config_file('config', _DEFAULT_CONFIG, 'Config whose data section is used.')
  flags.DEFINE_string('data_dir', None, 'Dataset root holding annotations.csv.', required=True)
  flags.DEFINE_integer('num_batches', 20, 'Timed batches per setting (after one warm-up).')
  flags.DEFINE_integer('batch_size', 8, 'Clips per batch.')
  flags.DEFINE_integer('read_threads', 1, 'grain read threads per process (config.data).')
  flags.DEFINE_list('workers', ['0', '1', '2'], 'Worker-process counts to time.')
  flags.DEFINE_list('tfds_names', [], 'TFDS packs of the dataset to time against the folder '
                    '(only those, then), e.g. objects_s0,objects_s72.')
  flags.DEFINE_string('tfds_data_dir', '', 'TFDS data directory of --tfds_names.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  config = bench_config(f.config, f.data_dir, f.batch_size, f.read_threads)
  num_clips = f.num_batches * f.batch_size
  if f.tfds_names:
    c = config.data
    print(f'clip {c.num_frames}x{c.crop_size}x{c.crop_size}, resize_short {c.resize_short}; '
          f'batch {f.batch_size}, {f.num_batches} timed batches, {os.cpu_count()} CPUs')
    print_packs(config, f.tfds_names, f.tfds_data_dir, [int(w) for w in f.workers],
                f.num_batches)
    return
  plain = time_plain_loop(config, num_clips)
  c = config.data
  print(f'clip {c.num_frames}x{c.crop_size}x{c.crop_size}, stride {c.frame_stride}, '
        f'{c.sampling} sampling; batch {f.batch_size}, {f.num_batches} timed batches, '
        f'read_threads {f.read_threads}, {os.cpu_count()} CPUs')
  print(f'{"setting":<30}{"start-up s":>11}{"clips/s":>10}{"vs plain":>10}')
  print(f'{"plain PyAV loop":<30}{"-":>11}{plain:>10.1f}{1.0:>10.2f}')
  other = 'opencv' if c.get('rgb_conversion', 'swscale') == 'swscale' else 'swscale'
  swapped = config.copy_and_resolve_references()
  swapped.data.rgb_conversion = other
  rate = time_plain_loop(swapped, num_clips)
  print(f'{"plain PyAV loop, " + other + " RGB":<30}{"-":>11}{rate:>10.1f}{rate / plain:>10.2f}')
  with_decord = time_decord_loop(config, num_clips)
  if with_decord is None:
    print(f'{"plain decord loop":<30}{"-":>11}{"n/a":>10}{"":>10}  (pip install decord)')
  else:
    print(f'{"plain decord loop":<30}{"-":>11}{with_decord:>10.1f}{with_decord / plain:>10.2f}')
  for workers in (int(w) for w in f.workers):
    for shared in ((False, True) if workers else (False,)):
      startup, rate = time_pipeline(config, workers, f.num_batches, shared)
      name = f'grain, {workers} workers' + (', shared mem' if shared else '')
      print(f'{name:<30}{startup:>11.2f}{rate:>10.1f}{rate / plain:>10.2f}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
