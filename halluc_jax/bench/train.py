"""Training throughput and MFU: synthetic in-memory batches vs the real input pipeline.

Compiles the trainer's train step for the config on the current JAX devices (the same program
`train.py` runs: both build it with `setup.Setup`), then times it twice:

  synthetic  batches of the pipeline's exact shapes and dtypes, generated once and already on
             the devices, so the figure is the step's compute alone;
  real       `pipeline.make_train_dataset` -> `device_put_batch` -> step, every step, so any
             time the step waits for decoded clips shows up (the input-bound gap).

Each step is followed by `block_until_ready`; step time is the median over `--steps` steps after
`--warmup` untimed ones (the real run's warm-up also absorbs worker start-up). Model FLOPs per
step are the matrix products and convolutions of the step's jaxpr (`train_step.step_flops`,
`halluc_jax.perf.flops`: the same count on every backend); MFU divides them by the step time and the
devices' peak (`halluc_jax.perf.mfu`), 'n/a' on CPU.

  cached     with `--feature_cache DIR` (a frozen backbone's features written by
             `python -m halluc_jax.tools.cache_features`), the same config trained from the
             cache: the heads' step alone, fed by the cached-feature pipeline; printed beside
             the real row as the frozen-backbone speed-up.

Usage:
  python -m halluc_jax.bench.train --config configs/default.py --data_dir data/synthetic_objects \
      [--steps 10 --warmup 2 --real=true --config.data.num_workers=2] [--feature_cache DIR]
  (--data_dir sets data.root, data.annotations and, if <data_dir>/targets/manifest.json exists,
  data.aux_dir; without --data_dir the config's own paths are used.)
"""
import os
import statistics
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from halluc_jax.perf import mfu as mfu_lib
from halluc_jax.perf import step_inputs
from halluc_jax import host_devices
from halluc_jax import sharding
from halluc_jax import setup as setup_lib
from halluc_jax.data import pipeline
from halluc_jax.models import hallucinator

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'default.py')


def time_steps(step, state, next_batch, steps, warmup):
  """Runs warmup + steps updates; returns (state, step seconds, batch-wait seconds) lists."""
  step_s, wait_s = [], []
  for i in range(warmup + steps):
    t0 = time.perf_counter()
    batch = next_batch()
    t1 = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    if i >= warmup:
      step_s.append(time.perf_counter() - t0)
      wait_s.append(t1 - t0)
  return state, step_s, wait_s


def real_batches(config, setup, abstract):
  """(next_batch, close): the real pipeline, filtered to the step's inputs, on the devices."""
  it = pipeline.make_train_dataset(config, jax.process_index(), jax.process_count(),
                                   streams=setup.streams.dims)

  def next_batch():
    batch = next(it)
    batch = {k: batch[k] for k in abstract}  # drops host-only entries such as string ids
    return pipeline.device_put_batch(batch, setup.batch_sharding)

  def close():  # stops grain's worker processes and frees their shared memory
    pipeline.close(it)
  return next_batch, close


def row(name, step_s, wait_s, batch, flops, devices, peak):
  med = statistics.median(step_s)
  rate = flops / med
  return (f'| {name} | {1e3 * med:.1f} | {1e3 * statistics.fmean(step_s):.1f} | '
          f'{1e3 * statistics.median(wait_s):.1f} | {batch / med:.2f} | {rate / 1e12:.4g} | '
          f'{mfu_lib.format_mfu(mfu_lib.mfu(flops, med, devices, peak))} |'), med


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  config = f.config
  if f.data_dir:
    config = step_inputs.point_at_data(config, f.data_dir)
  host_devices.configure(config.train.get('cpu_devices', 1))  # before the backend starts
  devices = jax.devices()
  mesh = sharding.make_mesh(config.mesh, devices)
  setup = setup_lib.Setup(config, mesh, abstract=not f.real)  # the real run reads the data
  abstract = setup.abstract_batch()
  state = setup.init_state()
  t0 = time.perf_counter()
  step, flops = setup.compile_train_step(setup.abstract_state, abstract)
  compile_s = time.perf_counter() - t0
  peak = mfu_lib.device_peak_flops(devices[0])
  batch = int(config.data.batch_size)
  d = config.data
  print(f'{jax.default_backend()} x {len(devices)} ({devices[0].device_kind}); '
        f'{hallucinator.backbone_label(config.model.backbone)} '
        f'{dict(config.model.backbone.overrides)}, '
        f'{d.num_frames}x{d.crop_size}x{d.crop_size}, {config.model.dtype}, '
        f'{len(setup.streams.dims)} streams, {config.loss.update_scheme} updates; batch {batch} '
        f'({config.train.grad_accum_steps} micro-batches), Adam mu {config.optim.mu_dtype}; '
        f'compile {compile_s:.1f} s; {flops / 1e12:.4g} model TFLOPs per step (jaxpr '
        f'matmuls + convolutions);\n  peak '
        f'{"n/a" if peak is None else f"{peak / 1e12:.0f} TFLOP/s"} per device')
  print(f'{f.steps} timed steps after {f.warmup} warm-up steps, median (mean) wall time')
  print('| input | step ms | mean ms | batch wait ms | clips/s | TFLOP/s | MFU |')
  print('|---|---|---|---|---|---|---|')
  on_device = pipeline.device_put_batch(step_inputs.synthetic_batch(abstract, d.num_classes),
                                        setup.batch_sharding)
  state, step_s, wait_s = time_steps(step, state, lambda: on_device, f.steps, f.warmup)
  line, synthetic_med = row('synthetic, in memory', step_s, wait_s, batch, flops,
                            len(devices), peak)
  print(line, flush=True)
  if f.real:
    next_batch, close = real_batches(config, setup, abstract)
    try:
      _, step_s, wait_s = time_steps(step, state, next_batch, f.steps, f.warmup)
    finally:
      close()
    line, real_med = row(f'real pipeline, {d.num_workers} workers', step_s, wait_s, batch,
                         flops, len(devices), peak)
    print(line)
    print(f'input-bound gap: real / synthetic step time = {real_med / synthetic_med:.2f}x')
    if f.feature_cache:
      cached = config.copy_and_resolve_references()
      cached.data.feature_cache = f.feature_cache
      cached_setup = setup_lib.Setup(cached, mesh)
      cached_step, cached_flops = cached_setup.compile_train_step(
          cached_setup.abstract_state, cached_setup.abstract_batch())
      next_batch, close = real_batches(cached, cached_setup, cached_setup.abstract_batch())
      try:
        _, step_s, wait_s = time_steps(cached_step, cached_setup.init_state(), next_batch,
                                       f.steps, f.warmup)
      finally:
        close()
      line, cached_med = row(f'cached features ({f.feature_cache})', step_s, wait_s, batch,
                             cached_flops, len(devices), peak)
      print(line)
      print(f'frozen-backbone speed-up: real video / cached step time = '
            f'{real_med / cached_med:.2f}x')


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', _DEFAULT_CONFIG, 'Experiment config file (.py).',
                                  lock_config=True)
  flags.DEFINE_string('data_dir', None, 'Dataset root with annotations.csv (and targets/).')
  flags.DEFINE_integer('steps', 10, 'Timed steps per input mode.')
  flags.DEFINE_integer('warmup', 2, 'Untimed steps before timing (each mode).')
  flags.DEFINE_bool('real', True, 'Also time the real grain pipeline (needs the data).')
  flags.DEFINE_string('feature_cache', '', 'Also time training from this feature cache '
                      '(with --real; the config must freeze the backbone).')
  app.run(main)
