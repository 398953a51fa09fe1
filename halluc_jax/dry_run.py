"""The dry run: compile the real train step ahead of time and report its size and cost.

  python -m halluc_jax.tools.plan --config configs/vivit_b16x2_k400.py [--devices 8] [--config.x=..]
  python -m halluc_jax.main --config ... --workdir ... --config.dry_run=True [--config.dry_run_devices=8]

Both call `run` here (the CLI in tools/plan.py only parses its flags).

Builds the mesh of `config.mesh` over `--devices` fake CPU devices (XLA's
`--xla_force_host_platform_device_count`, set before jax starts), the model, optimisers and
train-state shardings with the trainer's `setup.Setup` in its abstract mode (no data read,
`jax.eval_shape`: no weight is ever allocated), then lowers and compiles
`train_step.train_step` with the trainer's in/out shardings and donation for an abstract batch
shaped like the input pipeline's. It prints:

* parameters, in total and per group (backbone / streams / haf / cenet / prednet);
* model FLOPs of one step (matrix products and convolutions of its jaxpr, `halluc_jax.perf.flops`,
  the MFU numerator the trainer logs): all devices, per device (/ devices) and per clip;
* forward FLOPs of one clip on the test-time path (backbone, and backbone + heads), from the
  cost analysis of separately compiled forward programs, also as multiply-adds (FLOPs / 2), next
  to the analytic backbone count (2 x MACs of the tubelet embedding, the matmuls and the two
  attention products) as a cross-check;
* per-device memory from `compiled.memory_analysis()` (arguments, outputs, donated aliases,
  temporaries, generated code). These are the CPU compiler's buffers; a GPU/TPU compile fuses
  and schedules differently, so read them as an estimate.

No data is read: stream dims come from the target manifest when `config.data.aux_dir` is set,
else from `config.model.streams.dims`. `--devices=0` uses the real devices of the default
backend instead of fake CPU ones.
"""
import math
import os
import re
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from halluc_jax import setup as setup_lib
from halluc_jax import sharding
from halluc_jax import train_step as train_step_lib
from halluc_jax.models import hallucinator
from halluc_jax.models import i3d
from halluc_jax.models import vivit
from halluc_jax.models.variants import decode_i3d_variant, decode_variant


def force_host_device_count(num_devices):
  """Makes XLA's CPU backend expose `num_devices` devices; call before jax's backend starts."""
  flags = re.sub(r'--xla_force_host_platform_device_count=\S+', '',
                 os.environ.get('XLA_FLAGS', '')).split()
  os.environ['XLA_FLAGS'] = ' '.join(flags + [
      f'--xla_force_host_platform_device_count={int(num_devices)}'])
  os.environ['JAX_PLATFORMS'] = 'cpu'


def devices_for(config):
  """Fake CPU devices for the dry run: config.dry_run_devices, else a fixed mesh's size, else 0
  (= the real devices)."""
  if int(config.get('dry_run_devices', 0)) > 0:
    return int(config.dry_run_devices)
  sizes = [int(v) for v in config.mesh.shape.values()]
  return 0 if -1 in sizes else math.prod(sizes)


GIB = 2.0 ** 30


def param_counts(params):
  """{group: parameter count} over the top-level groups of `params`, plus 'total'."""
  counts = {g: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(sub))
            for g, sub in params.items()}
  return dict(counts, total=sum(counts.values()))


def cost_flops(compiled):
  """FLOPs of a compiled program (one device's program under SPMD), or of a lowered one (the
  whole program); NaN when the backend gives no cost analysis (GPU for a lowered program)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per program
    cost = cost[0] if cost else None
  return float(cost.get('flops', float('nan'))) if cost else float('nan')


def memory_report(compiled):
  """Per-device bytes from `compiled.memory_analysis()`; total = args + out - alias + temp + code."""
  m = compiled.memory_analysis()
  out = {k: int(getattr(m, f'{k}_size_in_bytes')) for k in
         ('argument', 'output', 'alias', 'temp', 'generated_code')}
  out['total'] = (out['argument'] + out['output'] - out['alias'] + out['temp']
                  + out['generated_code'])
  return out


def analytic_backbone_flops(model_cfg, num_frames, crop_size):
  """Forward FLOPs of one clip through the backbone, counting 2 FLOPs per multiply-add.

  ViViT: the tubelet embedding (one convolution, or the conv stem's convs), every Dense (q, k,
  v, out, fc1, fc2) and the two attention products (q k^T and p v); LayerNorm, BatchNorm,
  softmax, GELU and biases are left out.
  I3D: every convolution, from the layer table (`i3d.analytic_flops`); pools, BatchNorm and
  ReLU are left out.

  Returns:
    FLOPs by part and 'total': ViViT {'embed', 'dense', 'attention'}, I3D {'stem',
    'inception'}.
  """
  b = model_cfg.backbone
  if b.get('name', 'vivit') == 'i3d':
    size = decode_i3d_variant(b.variant, **dict(b.get('overrides', {})))
    flops = i3d.analytic_flops(size, num_frames, crop_size)
    return {k: v for k, v in flops.items() if k != 'feature_shape'}
  s = decode_variant(b.variant, **dict(b.get('overrides', {})))
  nt, nh = num_frames // s.tubelet, crop_size // s.patch_size
  dense_macs_per_token = 4 * s.width * s.width + 2 * s.width * s.mlp_dim

  def encoder(depth, sequences, length):  # (dense, attention) MACs of `depth` blocks
    return (depth * sequences * length * dense_macs_per_token,
            depth * sequences * 2 * length * length * s.width)

  if b.kind == 'factorised':
    spatial = encoder(s.depth, nt, nh * nh)
    temporal = encoder(b.temporal_depth, 1, nt)
    dense, attention = spatial[0] + temporal[0], spatial[1] + temporal[1]
  else:
    dense, attention = encoder(s.depth, 1, nt * nh * nh)
  if b.get('stem', 'patch') == 'conv':  # strided convs + 1x1 projection (models/vivit.py)
    embed = vivit.conv_stem_macs(s, num_frames, crop_size, crop_size, b.get('stem_channels', ()),
                                 int(b.get('stem_time_taps', 1)))
  else:
    embed = nt * nh * nh * (s.tubelet * s.patch_size * s.patch_size * 3) * s.width
  flops = {'embed': 2 * embed, 'dense': 2 * dense, 'attention': 2 * attention}
  return dict(flops, total=sum(flops.values()))


def forward_flops(setup):
  """(backbone, full test-time model) forward FLOPs of one clip, from XLA's cost analysis."""
  d = setup.config.data
  clip = jax.ShapeDtypeStruct((1, d.num_frames, d.crop_size, d.crop_size, 3), jnp.float32)
  variables = setup.abstract_variables
  model = setup.model
  # The backbone's own variables: its parameters and, for I3D, its BatchNorm statistics.
  backbone_vars = {k: v['backbone'] for k, v in variables.items() if 'backbone' in v}
  backbone = jax.jit(lambda var, v: model.backbone.apply(var, v, train=False))
  full = jax.jit(lambda var, v: model.apply(var, v, train=False)['logits'])
  # Rules without the mesh: one clip's whole program, not one device's share of a split one.
  with nn.logical_axis_rules(setup.rules):
    return (cost_flops(backbone.lower(backbone_vars, clip).compile()),
            cost_flops(full.lower(variables, clip).compile()))


def measure(config, devices, with_forward=True):
  """Compiles the train step for `config` on `devices` and returns the figures as a dict."""
  mesh = sharding.make_mesh(config.mesh, devices)
  dp = sharding.data_parallel_size(mesh)
  if int(config.data.batch_size) % dp:
    raise ValueError(f'config.data.batch_size={config.data.batch_size} is not divisible by the '
                     f'{dp} data-parallel devices of mesh {dict(mesh.shape)}.')
  setup = setup_lib.Setup(config, mesh, abstract=True)
  batch = setup.abstract_batch()
  with setup.context():
    t0 = time.perf_counter()
    traced = setup.jit_train_step().trace(setup.abstract_state, batch)
    lowered = traced.lower()
    t1, c1 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    t2, c2 = time.perf_counter(), time.process_time()
  per_device = train_step_lib.step_flops(traced) / len(devices)
  result = {
      'devices': len(devices), 'device_kind': devices[0].device_kind,
      'mesh': {k: int(v) for k, v in mesh.shape.items()},
      'global_batch': int(config.data.batch_size),
      'per_device_batch': int(config.data.batch_size) // dp,
      'streams': setup.streams.dims, 'params': param_counts(setup.abstract_variables['params']),
      'lower_s': t1 - t0, 'compile_s': t2 - t1, 'compile_cpu_s': c2 - c1,
      'step_flops_per_device': per_device, 'step_flops': per_device * len(devices),
      'step_flops_per_clip': per_device * len(devices) / int(config.data.batch_size),
      'memory': memory_report(compiled),
      'analytic_backbone': analytic_backbone_flops(config.model, config.data.num_frames,
                                                   config.data.crop_size)}
  if with_forward:
    t0 = time.perf_counter()
    result['forward_backbone_flops'], result['forward_flops'] = forward_flops(setup)
    result['forward_compile_s'] = time.perf_counter() - t0
  return result


def _si(value, unit):
  """'17.47 TFLOPs', '365.9 GFLOPs', '2.71 MFLOPs': three to four significant digits."""
  for scale, prefix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
    if abs(value) >= scale:
      return f'{value / scale:.4g} {prefix}{unit}'
  return f'{value:.4g} {unit}'


_ANALYTIC_PARTS = {'dense': 'matmuls', 'stem': 'stem convs', 'inception': 'Inception convs'}


def format_report(config, r):
  """The printout (a list of lines) of a `measure` result."""
  d, m, b = config.data, config.model, config.model.backbone
  fl = lambda x: _si(x, 'FLOPs')  # pylint: disable=unnecessary-lambda-assignment
  macs = lambda x: _si(x / 2, 'MACs')  # pylint: disable=unnecessary-lambda-assignment
  p = r['params']
  lines = [
      f"Dry run on {r['devices']} x {r['device_kind']}; mesh {r['mesh']}",
      f"Model: {hallucinator.backbone_label(b)} (overrides {dict(b.get('overrides', {}))}), "
      f"{d.num_frames}x{d.crop_size}x{d.crop_size} clips, compute {m.dtype}; "
      f"{len(r['streams'])} streams {dict(r['streams'])}; update scheme "
      f"{config.loss.update_scheme!r}, backbone lr x{config.optim.backbone_lr_mult}",
      f"Batch: {r['global_batch']} clips ({r['per_device_batch']} per device)",
      f"Parameters: {p['total']:,} total = " + ', '.join(
          f'{k} {v:,}' for k, v in p.items() if k != 'total'),
      f"Compile: lower {r['lower_s']:.1f} s, compile {r['compile_s']:.1f} s wall "
      f"({r['compile_cpu_s']:.1f} s CPU time of this process)",
      'Train step FLOPs (model FLOPs: matmuls + convolutions of the jaxpr, halluc_jax.perf.flops):',
      f"  per device {fl(r['step_flops_per_device'])}; all devices {fl(r['step_flops'])}; "
      f"per clip {fl(r['step_flops_per_clip'])}"]
  a = r['analytic_backbone']
  if 'forward_flops' in r:
    fb, ff = r['forward_backbone_flops'], r['forward_flops']
    lines += [
        'Forward of one clip, test-time path (cost analysis of compiled forward programs):',
        f'  backbone {fl(fb)} = {macs(fb)}; full model {fl(ff)} = {macs(ff)}',
        f"  train step per clip / full forward = {r['step_flops_per_clip'] / ff:.2f}"
        ' (about 3 per forward+backward pass of the whole model)']
  parts = ', '.join(f'{_ANALYTIC_PARTS.get(k, k)} {fl(v)}' for k, v in a.items() if k != 'total')
  lines.append(f"  analytic backbone {fl(a['total'])} = {macs(a['total'])} ({parts})"
               + (f"; XLA / analytic = {r['forward_backbone_flops'] / a['total']:.3f}"
                  if 'forward_backbone_flops' in r else ''))
  mem = r['memory']
  lines.append('Memory per device (compiled.memory_analysis, CPU compile): ' + ', '.join(
      f'{k} {mem[k] / GIB:.2f} GiB' for k in
      ('argument', 'output', 'alias', 'temp', 'generated_code', 'total')))
  return lines


def run(config, num_devices, platform=None, with_forward=True):
  """The dry run: `num_devices` fake CPU devices (0 = the real ones of `platform` or the default
  backend), `measure`, print the report; returns the figures.

  Call before anything starts jax's backend (the fake device count is read then).

  Raises:
    ValueError: the backend started earlier with fewer devices, or the config does not fit.
  """
  if num_devices:
    force_host_device_count(num_devices)
    jax.config.update('jax_platforms', 'cpu')
  elif platform:
    jax.config.update('jax_platforms', platform)
  devices = jax.devices()
  if len(devices) < num_devices:
    raise ValueError(f'Dry run asked for {num_devices} fake CPU devices but jax has '
                     f'{len(devices)}: its backend started before XLA_FLAGS was set.')
  result = measure(config, devices[:num_devices] if num_devices else devices, with_forward)
  print('\n'.join(format_report(config, result)), flush=True)
  return result
