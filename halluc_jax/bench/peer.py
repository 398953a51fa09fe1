r"""Our train step against a PyTorch peer of the same model, alternating, in one invocation.

Cases (the model dimensions both sides build; `CASES` below):

  vivit_s  ViViT-S/16x2 (width 384, depth 12, 6 heads), 16x112x112 clips, batch 4, 400 classes,
           patch stem, sin-cos positions, no stochastic depth; peer: transformers VideoMAE.
  default  the main job's CPU model as RGB only (configs/rgb_only.py: ViViT-Ti/16x2, 3 blocks,
           conv stem, 16x64x64, batch of the config); peer: VideoMAE with the same conv stem.
  i3d      configs/i3d_rgb_only.py (I3D 'mini', 16x64x64); peer: the torch I3D of the same
           layout (bench/torch_peers.py).

Ours is `setup.Setup(config).compile_train_step` (the trainer's program) on synthetic batches
already on the device; the peer is forward + cross-entropy + backward + clipping + AdamW
(bench/torch_peers.py). Each round times `--steps` steps of ours, then of the peer, after
`--warmup` untimed ones each; the rounds alternate so drifting machine load hits both. The
ratio is ours / peer of the medians over all timed steps (< 1: ours is faster).

`--decode_workers N` runs the real input pipeline (grain with N PyAV decode workers on
`--data_dir`) in a background process during the whole measurement, as in training; compare a
run with N = 0 to see how much each side slows down.

Usage (torch and transformers: `pip install -e '.[bench]'`):
  python -m halluc_jax.bench.peer --case vivit_s [--rounds 3 --steps 6 --warmup 2]
  python -m halluc_jax.bench.peer --case default --decode_workers 1 --data_dir data/synthetic_objects
  python -m halluc_jax.bench.peer --case default --cpu_devices 2   # ours on 2 host devices
"""
import multiprocessing
import os
import runpy
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

from halluc_jax import host_devices
from halluc_jax import setup as setup_lib
from halluc_jax import sharding
from halluc_jax.data import pipeline
from halluc_jax.models import hallucinator
from halluc_jax.models import i3d as i3d_lib
from halluc_jax.models import variants
from halluc_jax.models import vivit
from halluc_jax.bench import torch_peers
from halluc_jax.perf import step_inputs

_CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')

# case -> (config file, overrides of it). Both sides are built from the resulting config.
CASES = {
    'vivit_s': ('rgb_only.py', {
        'model.backbone.variant': 'S/16x2', 'model.backbone.overrides': {},
        'model.backbone.stem': 'patch', 'model.backbone.posemb': 'sincos',
        'model.backbone.stochastic_depth': 0.0, 'data.crop_size': 112,
        'data.resize_short': 128, 'data.batch_size': 4, 'data.num_classes': 400}),
    'default': ('rgb_only.py', {}),
    'i3d': ('i3d_rgb_only.py', {}),
}

_CASE = flags.DEFINE_enum('case', 'vivit_s', sorted(CASES), 'Model dimensions to compare.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating rounds (ours, then the peer).')
_STEPS = flags.DEFINE_integer('steps', 6, 'Timed steps per side per round.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps per side per round.')
_DECODE = flags.DEFINE_integer('decode_workers', 0,
                               'Decode workers of a background input pipeline (0 = none).')
_DATA = flags.DEFINE_string('data_dir', 'data/synthetic_objects',
                            'Dataset the background pipeline decodes (--decode_workers > 0).')
_THREADS = flags.DEFINE_integer('torch_threads', 0, 'torch intra-op threads (0 = CPU count).')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 1, 'Ours: the batch split over this many host CPU devices '
    '(config.train.cpu_devices, halluc_jax/host_devices.py).')


def case_config(case):
  """The ConfigDict of `case`: its config file's get_config() with the case's overrides."""
  name, overrides = CASES[case]
  config = runpy.run_path(os.path.join(_CONFIGS, name))['get_config']()
  config.data.aux_dir = ''  # RGB only: the peer has no streams
  config.update_from_flattened_dict(overrides)
  return config


def peer_model(config):
  """The torch peer of `config`'s backbone + classifier (bench/torch_peers.py)."""
  b, d = config.model.backbone, config.data
  if b.get('name', 'vivit') == 'i3d':
    size = variants.decode_i3d_variant(b.variant, **dict(b.overrides))
    return torch_peers.i3d(i3d_lib.layout(size), d.num_classes)
  size = variants.decode_variant(b.variant, **dict(b.overrides))
  layers = None
  if b.get('stem', 'patch') == 'conv':
    layers = vivit.conv_stem_layout(size.patch_size, size.tubelet,
                                    vivit.conv_stem_channels(size, tuple(b.stem_channels)),
                                    int(b.get('stem_time_taps', 1)))
  return torch_peers.videomae(size, d.num_frames, d.crop_size, d.num_classes, layers)


def _decode_forever(config_case, data_dir, workers, stop):
  """Background load: the real training pipeline decoding `data_dir` until `stop` is set."""
  config = step_inputs.point_at_data(case_config(config_case), data_dir)
  config.data.aux_dir = ''
  config.data.num_workers = workers
  while not stop.is_set():
    it = pipeline.make_train_dataset(config, 0, 1, streams={})
    for _ in it:
      if stop.is_set():
        break
    pipeline.close(it)


def _time(step_once, steps, warmup):
  out = []
  for i in range(warmup + steps):
    t0 = time.perf_counter()
    step_once()
    if i >= warmup:
      out.append(time.perf_counter() - t0)
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  torch, transformers = torch_peers.require_torch()
  config = case_config(_CASE.value)
  config.train.cpu_devices = _CPU_DEVICES.value
  host_devices.configure(config.train.cpu_devices)  # before the backend starts
  d = config.data
  threads = torch_peers.set_threads(_THREADS.value or os.cpu_count())

  # Ours: the trainer's compiled step on batches already on the device.
  mesh = sharding.make_mesh(config.mesh, jax.devices())
  setup = setup_lib.Setup(config, mesh, abstract=True)
  abstract = setup.abstract_batch()
  state = setup.init_state()
  step, flops = setup.compile_train_step(setup.abstract_state, abstract)
  batch = pipeline.device_put_batch(step_inputs.synthetic_batch(abstract, d.num_classes),
                                    setup.batch_sharding)
  ours_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  holder = {'state': state}

  def ours_once():
    holder['state'], metrics = step(holder['state'], batch)
    jax.block_until_ready((holder['state'], metrics))

  # The peer.
  model = peer_model(config)
  peer_step = torch_peers.train_step_fn(model, config.optim.lr, config.optim.weight_decay,
                                        config.optim.clip_norm)
  clip, labels = torch_peers.synthetic_inputs(d.batch_size, d.num_frames, d.crop_size,
                                              d.num_classes)

  def peer_once():
    peer_step(clip, labels)

  print(f'case {_CASE.value}: {d.batch_size} x {d.num_frames}x{d.crop_size}x{d.crop_size} clips, '
        f'{d.num_classes} classes, float32, CPU x {os.cpu_count()}')
  print(f'  ours: {hallucinator.backbone_label(config.model.backbone)} '
        f'{dict(config.model.backbone.overrides)}, {ours_params / 1e6:.2f} M params, '
        f'{flops / 1e12:.4g} model TFLOPs per step, {len(jax.devices())} device(s); '
        f'jax {jax.__version__}')
  peer_name = type(getattr(model, 'model', model)).__name__
  print(f'  peer: {peer_name}, {torch_peers.num_parameters(model) / 1e6:.2f} M params; torch {torch.__version__} '
        f'({threads} threads), transformers {transformers.__version__}')
  stop, loader = None, None
  if _DECODE.value > 0:
    ctx = multiprocessing.get_context('spawn')
    stop = ctx.Event()
    loader = ctx.Process(target=_decode_forever,
                         args=(_CASE.value, _DATA.value, _DECODE.value, stop), daemon=False)
    loader.start()
    time.sleep(5.0)  # let its workers start decoding before timing
    print(f'  background: the input pipeline with {_DECODE.value} decode worker(s) on '
          f'{_DATA.value}')
  ours, peer = [], []
  try:
    print('| round | ours s/step (median) | peer s/step (median) | ours / peer |')
    print('|---|---|---|---|')
    for r in range(_ROUNDS.value):
      o = _time(ours_once, _STEPS.value, _WARMUP.value)
      p = _time(peer_once, _STEPS.value, _WARMUP.value)
      ours += o
      peer += p
      print(f'| {r} | {statistics.median(o):.3f} | {statistics.median(p):.3f} | '
            f'{statistics.median(o) / statistics.median(p):.2f} |', flush=True)
  finally:
    if loader is not None:
      stop.set()
      loader.join(timeout=60)
      if loader.is_alive():
        loader.terminate()
  mo, mp = statistics.median(ours), statistics.median(peer)
  print(f'all rounds: ours {mo:.3f} s/step ({flops / mo / 1e12:.3f} TFLOP/s), peer {mp:.3f} '
        f's/step; ratio ours / peer = {mo / mp:.2f}')


if __name__ == '__main__':
  app.run(main)
