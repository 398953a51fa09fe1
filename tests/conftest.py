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
