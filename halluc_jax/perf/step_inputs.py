"""Inputs for timing a train step: a config pointed at a dataset folder, synthetic batches.

Shared by the benchmarks (`halluc_jax.bench.train`, `halluc_jax.bench.peer`), which may not
import one another.
"""
import os

import jax
import numpy as np


def point_at_data(config, data_dir):
  """`config` reading the dataset (and its targets, when extracted) under `data_dir`."""
  config.data.root = data_dir
  config.data.annotations = os.path.join(data_dir, 'annotations.csv')
  targets = os.path.join(data_dir, 'targets')
  config.data.aux_dir = targets if os.path.isfile(os.path.join(targets, 'manifest.json')) else ''
  return config


def synthetic_batch(abstract, num_classes, seed=0):
  """Numpy arrays shaped like the abstract batch: random clips, labels and targets."""
  rng = np.random.default_rng(seed)

  def fill(path, spec):
    name = jax.tree_util.keystr(path)
    if "'label'" in name:
      if len(spec.shape) == 2:  # multi-hot
        return (rng.random(spec.shape) < 0.1).astype(spec.dtype)
      return rng.integers(0, num_classes, spec.shape).astype(spec.dtype)
    if "'valid'" in name or "'aux_mask'" in name or "'aux_varies'" in name:
      return np.ones(spec.shape, spec.dtype)
    if np.issubdtype(spec.dtype, np.integer):
      return np.zeros(spec.shape, spec.dtype)
    return rng.standard_normal(spec.shape).astype(spec.dtype)

  return jax.tree_util.tree_map_with_path(fill, abstract)
