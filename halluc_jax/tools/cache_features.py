r"""Runs a frozen backbone once over every clip and caches its features (data/feature_cache.py).

  python -m halluc_jax.tools.cache_features --config configs/X.py --out DIR [--views 4]
      [--config.init_from.path=CKPT ...]

The backbone is the run's: `config.model.backbone` initialised from `config.init_from` (a
published checkpoint) or, without one, at its seed's init. Train split: `--views` passes of the
train pipeline (its random crops and flips, each pass a new draw), so every video gets that many
augmented views; the eval and test splits: every deterministic eval view. Each clip goes through
the backbone in inference mode (BatchNorm on its running averages), on the run's mesh.

Then train the streams, HAF and PredNet on the cache at feature speed:
  python -m halluc_jax.main --config configs/X.py --workdir W --config.data.feature_cache=DIR \
      --config.optim.backbone_lr_mult=0
(docs/method.md, 'Frozen backbone and cached features').
"""
import math
import time

import jax
import numpy as np
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from halluc_jax import init_from
from halluc_jax import setup as setup_lib
from halluc_jax import train
from halluc_jax.data import feature_cache
from halluc_jax.data import pipeline


def _backbone_fn(setup, state):
  """Jitted video batch -> backbone features, with the state's backbone variables."""
  variables = {'params': state.params['backbone']}
  if state.batch_stats.get('backbone'):
    variables['batch_stats'] = state.batch_stats['backbone']
  backbone = setup.model.backbone
  fn = jax.jit(lambda v, x: backbone.apply(v, x, train=False))

  def run(video):
    with setup.context():
      return np.asarray(jax.device_get(fn(variables, pipeline.device_put_batch(
          video, setup.batch_sharding))))
  return run


def write_cache(config, out_dir, views=4):
  """Writes the cache of `config`'s splits to `out_dir`; returns (manifest, seconds per split)."""
  if pipeline.cache_dir(config):
    raise ValueError('config.data.feature_cache is set: write the cache from the video config.')
  if jax.process_count() > 1:
    raise ValueError('cache_features runs in one process (it writes one set of shards).')
  setup = setup_lib.Setup(config)
  state = init_from.apply(config, setup.init_state())
  forward = _backbone_fn(setup, state)
  writer = feature_cache.Writer(out_dir, config, views)
  seconds = {}
  records = pipeline.load_split(config, config.data.train_split)
  batch = int(config.data.batch_size)
  steps = math.ceil(int(views) * len(records) / batch)
  t0, rows = time.time(), []
  it = pipeline.make_train_dataset(config, 0, 1, streams={})
  try:
    for k in range(steps):
      b = next(it)
      feats = forward(b['video'])
      for i in np.flatnonzero(b['valid'] > 0):
        rows.append((feats[i], b['video_index'][i], (k * batch + i) // len(records), b['label'][i]))
  finally:
    pipeline.close(it)
  writer.write_split(config.data.train_split, rows)
  seconds[config.data.train_split] = time.time() - t0
  for split in dict.fromkeys(train.final_splits(config).values()):
    if split not in pipeline.split_names(config):
      continue
    t0, rows = time.time(), []
    it = pipeline.make_eval_dataset(config, 0, 1, split=split, streams={})
    try:
      for b in it:
        feats = forward(b['video'])
        for i in np.flatnonzero(b['valid'] > 0):
          rows.append((feats[i], b['video_index'][i], b['view_index'][i], b['label'][i]))
    finally:
      pipeline.close(it)
    writer.write_split(split, rows)
    seconds[split] = time.time() - t0
  manifest = writer.close({'seconds': seconds, 'init_from': dict(config.init_from),
                           'shuffle_seed': int(config.data.shuffle_seed)})
  return manifest, seconds


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  manifest, seconds = write_cache(f.config, f.out, f.views)
  for split, info in manifest['splits'].items():
    logging.info('%s: %d clips in %.1fs', split, info['num_records'], seconds[split])
  print(f'{f.out}: features {manifest["feature_shape"]}, '
        + ', '.join(f'{s} {i["num_records"]} clips ({seconds[s]:.0f}s)'
                    for s, i in manifest['splits'].items()))


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', None, 'Experiment config file (.py).',
                                  lock_config=True)
  flags.DEFINE_string('out', None, 'Cache directory to write.')
  flags.DEFINE_integer('views', 4, 'Augmented views per training video.')
  flags.mark_flags_as_required(['config', 'out'])
  app.run(main)
