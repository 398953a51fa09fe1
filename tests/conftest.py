"""Shared pytest fixtures: JAX on CPU, and one tiny real-video dataset per test session."""
import os

# Tests run on CPU (set before anything imports jax); export JAX_PLATFORMS to override.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

# The optional '.[bench]' extra (torch, transformers: parity tests, peer benchmark) must load
# before TensorFlow: importing triton (through transformers' VideoMAE) after TensorFlow segfaults.
try:
  import torch  # pylint: disable=g-import-not-at-top,unused-import
  from transformers.models.videomae import modeling_videomae  # pylint: disable=g-import-not-at-top,unused-import
except ImportError:
  pass

import pathlib  # pylint: disable=g-import-not-at-top,g-bad-import-order

import pytest  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
  """A 24-clip 'synthetic actions' dataset (48 px, 12-24 frames, 2 per class: 1 train, 1 val).

  Returns the dataset root (pathlib.Path) holding annotations.csv, classes.txt,
  metadata.jsonl and train/ val/ mp4 files. Shared by the whole session: do not modify it.
  """
  from halluc_jax.data import synthetic  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('synthetic_actions')
  synthetic.generate(str(root), num_videos=24, size=48, min_frames=12, max_frames=24, seed=1)
  return pathlib.Path(root)


@pytest.fixture(scope='module')
def fast_compilation():
  """No XLA optimisation passes for one module (`pytestmark = pytest.mark.usefixtures(
  'fast_compilation')`): compile time dominates on tiny models."""
  import jax  # pylint: disable=g-import-not-at-top
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)


@pytest.fixture(scope='session')
def extract_dataset(tiny_dataset, tmp_path_factory):
  """A copy of the tiny dataset's train split (file links) plus one corrupt video in the CSV.

  Returns (root, number of real train videos, the corrupt video's id); read-only, like
  tiny_dataset.
  """
  import shutil  # pylint: disable=g-import-not-at-top
  corrupt_id = 'corrupt_000000_000002'
  root = tmp_path_factory.mktemp('extract_data')
  (root / 'train').mkdir()
  for name in os.listdir(tiny_dataset / 'train'):
    os.symlink(tiny_dataset / 'train' / name, root / 'train' / name)
  (root / 'train' / f'{corrupt_id}.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'junk' * 64)
  shutil.copy(tiny_dataset / 'classes.txt', root / 'classes.txt')
  lines = (tiny_dataset / 'annotations.csv').read_text().splitlines()
  rows = [line for line in lines[1:] if line.endswith(',train')]
  label = rows[0].split(',')[0]
  csv_text = '\n'.join([lines[0]] + rows + [f'{label},corrupt,0,2,train']) + '\n'
  (root / 'annotations.csv').write_text(csv_text)
  return root, len(rows), corrupt_id


@pytest.fixture(scope='session')
def extract_config(extract_dataset):
  """`make(out_dir, **extract_overrides)`: a small, fast extraction config on extract_dataset
  (4 frames a video, in-process, no progress bar)."""
  from configs import default  # pylint: disable=g-import-not-at-top

  def make(out_dir, **extract_overrides):
    c = default.get_config()
    c.data.root = str(extract_dataset[0])
    c.data.annotations = str(extract_dataset[0] / 'annotations.csv')
    c.extract.out_dir = str(out_dir)
    c.extract.split = 'train'  # the test copy holds the train split only
    c.extract.frames_per_video = 4
    c.extract.num_workers = 0
    c.extract.progress = False
    c.extract.stream.sdf_motion.params.warmup = 16
    for key, value in extract_overrides.items():
      c.extract[key] = value
    return c
  return make
