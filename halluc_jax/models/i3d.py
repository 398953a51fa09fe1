"""I3D backbone (Flax Linen): Inception-v1 inflated to 3D (Carreira & Zisserman, CVPR 2017).

The layout of DeepMind's kinetics-i3d and its PyTorch port (piergiaj/pytorch-i3d), up to
Mixed_5c; the logits layer is removed (docs/method.md, 'I3D backbone and head'):

  Conv3d_1a_7x7 (stride 2) -> MaxPool3d_2a_3x3 (1,3,3)/(1,2,2) -> Conv3d_2b_1x1 -> Conv3d_2c_3x3
  -> MaxPool3d_3a_3x3 (1,3,3)/(1,2,2) -> Mixed_3b, 3c -> MaxPool3d_4a_3x3 (3,3,3)/(2,2,2)
  -> Mixed_4b..4f -> MaxPool3d_5a_2x2 (2,2,2)/(2,2,2) -> Mixed_5b, 5c

Every convolution is conv3d without bias -> BatchNorm (epsilon 1e-3) -> ReLU, with TensorFlow
"SAME" padding (lax's 'SAME' pads the same way: the extra pixel goes after). Module names are
pytorch-i3d's (`Mixed_4b/b1a/conv3d`, `.../bn`), so its weights map one to one (kernels
transposed to [T, H, W, in, out]); DeepMind's TF BatchNorm has no scale, i.e. scale 1.

X(rgb) is the map the stream heads read: Mixed_5c [B, T', H', W', C] averaged over space, then
average-pooled over time with window 2 and stride 1, giving [B, T'', C]. For a 64x224x224 clip
that is Mixed_5c's 8x7x7 map pooled by the published (2,7,7) kernel: T'' = 7, C = 1024. Clips
whose T' is 1 (8 frames or fewer) get window 1, so T'' = T' = 1.

BatchNorm momentum: flax's `momentum` is TF's decay (running = m * running + (1 - m) * batch).
The default 0.99 is pytorch-i3d's (torch momentum 0.01); TF I3D used 0.999, whose running
averages take ~1000 steps to forget their initial (0, 1), longer than a CPU run here. Set
`config.model.backbone.bn_momentum = 0.999` to fine-tune TF weights.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from halluc_jax.models.conv3d import conv3d_per_tap
from halluc_jax.models.partitioning import partitioned
from halluc_jax.models.variants import I3DSize
from halluc_jax.models.vivit import REMAT_POLICIES

# Published filters of each Inception block: (branch 0 1x1; branch 1 1x1, 3x3; branch 2 1x1,
# 3x3; branch 3 1x1 after a 3x3x3 max pool). Its output has b0 + b1b + b2b + b3b channels.
INCEPTION_STAGES = (
    (('Mixed_3b', (64, 96, 128, 16, 32, 32)), ('Mixed_3c', (128, 128, 192, 32, 96, 64))),
    (('Mixed_4b', (192, 96, 208, 16, 48, 64)), ('Mixed_4c', (160, 112, 224, 24, 64, 64)),
     ('Mixed_4d', (128, 128, 256, 24, 64, 64)), ('Mixed_4e', (112, 144, 288, 32, 64, 64)),
     ('Mixed_4f', (256, 160, 320, 32, 128, 128))),
    (('Mixed_5b', (256, 160, 320, 32, 128, 128)), ('Mixed_5c', (384, 192, 384, 48, 128, 128))),
)
# (name, published filters, kernel, strides) of the convolutions before stage 3; filters None =
# a max pool.
STEM = (('Conv3d_1a_7x7', 64, (7, 7, 7), (2, 2, 2)),
        ('MaxPool3d_2a_3x3', None, (1, 3, 3), (1, 2, 2)),
        ('Conv3d_2b_1x1', 64, (1, 1, 1), (1, 1, 1)),
        ('Conv3d_2c_3x3', 192, (3, 3, 3), (1, 1, 1)),
        ('MaxPool3d_3a_3x3', None, (1, 3, 3), (1, 2, 2)))
# The max pool after stages 3 and 4 (none after stage 5: its map is X(rgb)'s input).
STAGE_POOLS = (('MaxPool3d_4a_3x3', None, (3, 3, 3), (2, 2, 2)),
               ('MaxPool3d_5a_2x2', None, (2, 2, 2), (2, 2, 2)),
               None)
TEMPORAL_POOL = 2  # window of X(rgb)'s temporal average pool (the published kernel's 2)

_CONV_KERNEL = ('conv_t', 'conv_h', 'conv_w', 'conv_in', 'conv_out')
_ACT = ('batch', None, None, None, None)  # [B, T, H, W, C]: data parallel only


def layout(size):
  """The network as a list of ops for `size`: ('unit' | 'pool', name, filters, kernel, strides)
  for the stem and pools, ('inception', name, six filters, None, None) for the blocks.

  The module and `analytic_flops` both walk this list, so they cannot disagree on the layout.
  """
  ops = [('pool' if f is None else 'unit', name, None if f is None else size.filters(f), k, s)
         for name, f, k, s in STEM]
  for stage, keep, pool in zip(INCEPTION_STAGES, size.blocks, STAGE_POOLS):
    ops += [('inception', name, tuple(size.filters(f) for f in filters), None, None)
            for name, filters in stage[len(stage) - keep:]]
    if pool is not None:
      ops.append(('pool', pool[0], None, pool[2], pool[3]))
  return ops


def inception_channels(filters):
  """Output channels of an Inception block: its four branches concatenated."""
  return filters[0] + filters[2] + filters[4] + filters[5]


def _max_pool(x, window, strides):
  # lax pads 'SAME' max pools with -inf, as TF does (pytorch-i3d pads zeros after a ReLU: same).
  return nn.max_pool(x, window, strides, padding='SAME')


CONV_IMPLS = ('auto', 'conv3d', 'per_tap')


class Conv3D(nn.Module):
  """3-D convolution without bias, TF 'SAME' padding; kernel [T, H, W, in, out].

  `impl` 'per_tap' computes it as one 2-D convolution per temporal tap, summed. XLA:CPU runs
  3-D convolutions on a slow generic path (measured on 2 cores: a 3x3x3 conv 3-20x slower,
  forward and backward, than the same sums as 2-D convs, which go to its Eigen kernels), so
  'auto' picks 'per_tap' on CPU and the native 'conv3d' elsewhere (cuDNN). Both use the same
  parameter and agree to float rounding.
  """
  filters: int
  kernel: tuple = (1, 1, 1)
  strides: tuple = (1, 1, 1)
  dtype: Any = jnp.float32
  impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    if self.impl not in CONV_IMPLS:
      raise ValueError(f'Unknown conv impl {self.impl!r}; expected one of {CONV_IMPLS}.')
    # He init: each conv feeds a ReLU (BatchNorm rescales anyway; this keeps step 0 sane).
    kernel = self.param('kernel', partitioned(_CONV_KERNEL, nn.initializers.he_normal()),
                        tuple(self.kernel) + (x.shape[-1], self.filters))
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    impl = self.impl
    if impl == 'auto':
      impl = 'per_tap' if jax.default_backend() == 'cpu' else 'conv3d'
    if impl == 'conv3d':
      return jax.lax.conv_general_dilated(x, kernel, self.strides, 'SAME',
                                          dimension_numbers=('NDHWC', 'DHWIO', 'NDHWC'))
    return conv3d_per_tap(x, kernel, self.strides)


class Unit3D(nn.Module):
  """conv3d (no bias) -> BatchNorm (epsilon 1e-3) -> ReLU, TF 'SAME' padding."""
  filters: int
  kernel: tuple = (1, 1, 1)
  strides: tuple = (1, 1, 1)
  bn_momentum: float = 0.99
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x, *, train):
    x = Conv3D(self.filters, self.kernel, self.strides, self.dtype, self.conv_impl,
               name='conv3d')(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-3,
                     dtype=self.dtype, name='bn',
                     scale_init=partitioned(('conv_out',), nn.initializers.ones),
                     bias_init=partitioned(('conv_out',), nn.initializers.zeros))(x)
    return nn.relu(x)


class InceptionBlock(nn.Module):
  """Four branches, concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max pool -> 1x1.

  Attributes:
    filters: (b0, b1a, b1b, b2a, b2b, b3b) filters of its six Unit3Ds.
    bn_momentum, dtype, conv_impl: as in Unit3D.
  """
  filters: tuple
  bn_momentum: float = 0.99
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x, train):  # `train` positional: nn.remat marks it static by position
    f = self.filters
    unit = functools.partial(Unit3D, bn_momentum=self.bn_momentum, dtype=self.dtype,
                             conv_impl=self.conv_impl)
    b0 = unit(f[0], name='b0')(x, train=train)
    b1 = unit(f[2], (3, 3, 3), name='b1b')(unit(f[1], name='b1a')(x, train=train), train=train)
    b2 = unit(f[4], (3, 3, 3), name='b2b')(unit(f[3], name='b2a')(x, train=train), train=train)
    b3 = unit(f[5], name='b3b')(_max_pool(x, (3, 3, 3), (1, 1, 1)), train=train)
    return nn.with_logical_constraint(jnp.concatenate([b0, b1, b2, b3], axis=-1), _ACT)


def inception_class(remat='none'):
  """InceptionBlock, wrapped in `nn.remat` with the named policy of REMAT_POLICIES unless 'none'
  (parameter names and values do not depend on it)."""
  if remat not in REMAT_POLICIES:
    raise ValueError(f'Unknown remat policy {remat!r}; expected one of {tuple(REMAT_POLICIES)}.')
  if remat == 'none':
    return InceptionBlock
  return nn.remat(InceptionBlock, policy=REMAT_POLICIES[remat], static_argnums=(2,))


def temporal_features(x):
  """Mixed_5c [B, T', H', W', C] -> X(rgb) [B, T'', C]: mean over space, then a temporal average
  pool of window min(2, T') and stride 1 (the published (2,7,7) kernel on a 7x7 map)."""
  x = jnp.mean(x, axis=(2, 3))
  window = min(TEMPORAL_POOL, x.shape[1])
  return nn.avg_pool(x, (window,), strides=(1,), padding='VALID')


class I3D(nn.Module):
  """I3D backbone: video [B, T, H, W, 3] -> X(rgb) [B, T'', C] (see the module docstring).

  Attributes:
    size: width multiplier and blocks per stage (variants.decode_i3d_variant).
    bn_momentum: BatchNorm running-average momentum in flax's sense (TF's decay).
    dtype: compute dtype; parameters and BatchNorm statistics stay float32.
    remat: rematerialisation policy of every Inception block, a key of REMAT_POLICIES.
    conv_impl: 'auto' (per-tap 2-D convs on CPU, native 3-D elsewhere), 'conv3d' or 'per_tap';
      see Conv3D.
  """
  size: I3DSize
  bn_momentum: float = 0.99
  dtype: Any = jnp.float32
  remat: str = 'none'
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, video, *, train):
    if video.ndim != 5:
      raise ValueError(f'I3D expects video [B, T, H, W, C], got shape {video.shape}.')
    block = inception_class(self.remat)
    x = nn.with_logical_constraint(video.astype(self.dtype), _ACT)
    for kind, name, filters, kernel, strides in layout(self.size):
      if kind == 'pool':
        x = _max_pool(x, kernel, strides)
      elif kind == 'unit':
        x = Unit3D(filters, kernel, strides, self.bn_momentum, self.dtype, self.conv_impl,
                   name=name)(x, train=train)
        x = nn.with_logical_constraint(x, _ACT)
      else:
        x = block(filters, self.bn_momentum, self.dtype, self.conv_impl, name=name)(x, train)
    return temporal_features(x)


def _same(n, stride):
  return -(-n // stride)  # ceil: the output length of a 'SAME' conv or pool


def analytic_flops(size, num_frames, crop_size):
  """Forward FLOPs (2 per multiply-add) of one clip's convolutions, counted from `layout`.

  Pools, BatchNorm, ReLU and the final average are left out (a few per cent of a conv's count).

  Returns:
    {'stem', 'inception', 'total'} FLOPs, and 'feature_shape' (T'', C) of X(rgb).
  """
  t, h, w, c = num_frames, crop_size, crop_size, 3
  macs = {'stem': 0, 'inception': 0}
  for kind, _, filters, kernel, strides in layout(size):
    if kind == 'inception':
      positions = t * h * w
      f = filters
      macs['inception'] += positions * (c * (f[0] + f[1] + f[3] + f[5])
                                        + 27 * (f[1] * f[2] + f[3] * f[4]))
      c = inception_channels(f)
      continue
    t, h, w = _same(t, strides[0]), _same(h, strides[1]), _same(w, strides[2])
    if kind == 'unit':
      macs['stem'] += t * h * w * kernel[0] * kernel[1] * kernel[2] * c * filters
      c = filters
  flops = {k: 2 * v for k, v in macs.items()}
  return dict(flops, total=sum(flops.values()), feature_shape=(t - min(TEMPORAL_POOL, t) + 1, c))
