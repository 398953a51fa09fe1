"""Test-time overhead of the hallucination streams: FLOPs (XLA cost analysis) and forward time.

The paper claims that hallucinating the auxiliary descriptors costs next to nothing at test
time. For each model size this prints, for the test-time forward pass (RGB in, train=False):

  plain       ViViT backbone + one Dense classifier (an ordinary video classifier)
  haf_only    build_model(..., stream_dims={}): HAF stream + PredNet (the RGB-only baseline)
  streams     build_model(..., stream_dims): every hallucination stream + fusion + PredNet

with FLOPs from `compiled.cost_analysis()`, test-time parameter counts (CENet, a training-only
head, excluded), the median wall time of the
compiled forward on the current JAX backend (CPU unless JAX_PLATFORMS says otherwise), and each
figure's ratio to `plain`. Timing runs are interleaved across the three models, so drift in
machine load hits them alike.

Sizes:
  small  the default config (configs/default.py: Ti/8x2, depth 4, 16x64x64) with the default
         extraction streams (c.extract.streams, d*K dims each), d'_tot = c.model.fusion.out_dim.
  B      ViT-B/16x2 spatio-temporal, 16x224x224, 400 classes, the paper's 12 streams
         (bow, fv1, fv2, off, det1-4, sal1-2, gsf, af) with d = 128 and K = 8, d'_tot = 2000.

Usage:
  python -m halluc_jax.bench.overhead [--sizes small,B --reps 5 --batch 1]
"""
import importlib.util
import os
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from halluc_jax.models.hallucinator import build_model

_SIZES = flags.DEFINE_list('sizes', ['small', 'B'], 'Model sizes to measure: small, B.')
_REPS = flags.DEFINE_integer('reps', 5, 'Timed forward passes per model (after one warm-up).')
_BATCH = flags.DEFINE_integer('batch', 1, 'Clips per forward pass.')

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'default.py')
PAPER_STREAMS = ('bow', 'fv1', 'fv2', 'off', 'det1', 'det2', 'det3', 'det4', 'sal1', 'sal2',
                 'gsf', 'af')


class PlainClassifier(nn.Module):
  """Backbone + Dense(C): the ordinary classifier the streams are compared with."""
  backbone: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, video, *, train):
    return {'logits': nn.Dense(self.num_classes, name='head')(self.backbone(video, train=train))}


def load_default_config():
  spec = importlib.util.spec_from_file_location('default_config', _DEFAULT_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def size_setup(size):
  """(model config, stream dims, stream groups, num classes, video shape without batch)."""
  c = load_default_config()
  if size == 'small':
    streams = {n: c.extract.stream[n] for n in c.extract.streams.split(',')}
    dims = {n: int(s.d) * int(s.num_sketches) for n, s in streams.items()}
    groups = {n: s.group for n, s in streams.items()}
    return c.model, dims, groups, c.data.num_classes, (c.data.num_frames, c.data.crop_size,
                                                       c.data.crop_size, 3)
  if size == 'B':
    m = c.model
    m.backbone.variant, m.backbone.overrides = 'B/16x2', {}
    m.backbone.posemb = 'sincos'
    m.streams.sketch_dim, m.streams.num_sketches = 128, 8
    m.fusion.out_dim = 2000
    groups = {**{f'det{i}': 'odf' for i in range(1, 5)}, 'sal1': 'sdf', 'sal2': 'sdf'}
    return m, {n: 128 * 8 for n in PAPER_STREAMS}, groups, 400, (16, 224, 224, 3)
  raise ValueError(f'Unknown size {size!r}; expected small or B.')


def _flops(compiled):
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returns one dict per device program
    cost = cost[0]
  return float(cost.get('flops', float('nan')))


class _Identity(nn.Module):
  """Stands in for the backbone so the heads can be timed alone on pooled features."""

  def __call__(self, x, *, train):
    del train
    return x


def measure(models, inputs, reps):
  """{name: (test-time params, flops, median s, min s)} for each model's test-time forward."""
  compiled, variables, stats = {}, {}, {}
  for name, model in models.items():
    init = jax.jit(lambda v, m=model: m.init(jax.random.PRNGKey(0), v, train=False))
    variables[name] = init(inputs)
    # Only the logits leave the program, so XLA keeps exactly what classification needs.
    fwd = jax.jit(lambda var, v, m=model: m.apply(var, v, train=False)['logits'])
    compiled[name] = fwd.lower(variables[name], inputs).compile()
    jax.block_until_ready(compiled[name](variables[name], inputs))  # warm-up
    used = {k: v for k, v in variables[name]['params'].items() if k != 'cenet'}  # train-only
    params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.meta.unbox(used)))
    stats[name] = (params, _flops(compiled[name]), [])
  for _ in range(reps):
    for name in models:  # interleaved, so load drift hits every model alike
      start = time.perf_counter()
      jax.block_until_ready(compiled[name](variables[name], inputs))
      stats[name][2].append(time.perf_counter() - start)
  return {name: (p, f, float(np.median(t)), float(np.min(t))) for name, (p, f, t) in stats.items()}


def main(argv):
  del argv
  rows = []
  for size in _SIZES.value:
    model_cfg, dims, groups, num_classes, shape = size_setup(size)
    full = build_model(model_cfg, dims, num_classes, groups)
    models = {'plain': PlainClassifier(full.backbone, num_classes),
              'haf_only': build_model(model_cfg, {}, num_classes),
              'streams': full}
    rng = np.random.default_rng(0)
    video = jnp.asarray(rng.standard_normal((_BATCH.value,) + shape), jnp.float32)
    results = measure(models, video, _REPS.value)
    # The same heads on pooled features [B, D]: their cost without the backbone's noise.
    features = jnp.asarray(rng.standard_normal((_BATCH.value, full.backbone.size.width)),
                           jnp.float32)
    heads = measure({k: m.clone(backbone=_Identity()) for k, m in models.items()}, features,
                    50 * _REPS.value)
    base = results['plain']
    for name, (params, flops, median, fastest) in results.items():
      rows.append((size, 'x'.join(map(str, shape[:3])), name,
                   len(dims) if name == 'streams' else 0, params / 1e6, flops / 1e9,
                   flops / base[1], median * 1e3, fastest * 1e3, median / base[2],
                   heads[name][1] / 1e6, heads[name][2] * 1e3))
  print(f'backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), batch '
        f'{_BATCH.value}; whole forward: {_REPS.value} timed runs, heads alone: '
        f'{50 * _REPS.value}')
  print('| size | input TxHxW | model | streams | params (M) | GFLOPs | FLOPs ratio | median ms '
        '| min ms | time ratio | head MFLOPs | head ms |')
  print('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for row in rows:
    print('| {} | {} | {} | {} | {:.2f} | {:.3f} | {:.5f} | {:.1f} | {:.1f} | {:.3f} | {:.3f} '
          '| {:.3f} |'.format(*row))


if __name__ == '__main__':
  app.run(main)
