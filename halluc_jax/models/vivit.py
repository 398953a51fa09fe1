"""ViViT backbone (Flax Linen): tubelet embedding, pre-norm transformer, two encoder layouts.

* 'spatio_temporal': joint attention over all t*h*w tokens, mean pooling, final LayerNorm. This is
  ViViT model 1 without a class token, i.e. the VideoMAE fine-tuning layout (`fc_norm` after the
  mean), so VideoMAE-style weights map onto it one to one.
* 'factorised': ViViT model 2 (factorised encoder): a spatial transformer on each time slice,
  mean-pooled per slice, then a temporal transformer over the slice embeddings.

Two tubelet stems turn the clip into the same [T/tubelet, H/patch, W/patch, D] token grid:

* 'patch' (the module's default, for ViViT/VideoMAE weights): one linear tubelet embedding (a
  conv3d with kernel = stride = tubelet x patch x patch).
* 'conv' (configs/default.py's): 3x3 conv layers of stride 2 (the first also strides by the
  tubelet in time, over 3 frames), each conv -> BatchNorm -> GELU, then a 1x1x1 projection:
  the "early convolutions" stem of Xiao et al. 2021 ("Early convolutions help transformers see
  better") inflated to video. Its overlapping small kernels give the from-scratch transformer
  the locality bias a linear patchify lacks, which it misses on small training sets. Measured
  on the embedded 'objects' data (RGB only, 576 steps): val top-1 18.8% with the patch stem,
  58.3% with this one (channels 16-32-64-128, 3 blocks); with LayerNorm instead of BatchNorm
  in the stem it stays at 15.6% (results/vivit_small_data/).

The backbone returns the pooled token vector X in R^D that the hallucination streams read.
"""
from typing import Any

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from halluc_jax.models.conv3d import conv3d_per_tap, same_padding
from halluc_jax.models.partitioning import partitioned
from halluc_jax.models.variants import ViTSize

_KERNEL_INIT = nn.initializers.xavier_uniform()  # default kernel initialiser of this module

BACKBONE_KINDS = ('spatio_temporal', 'factorised')
POSEMB_KINDS = ('learned', 'sincos')
STEMS = ('patch', 'conv')
STEM_NORMS = ('batch', 'layer', 'none')  # norm after each conv of the 'conv' stem
# The MLP's GELU: 'tanh' (flax's default approximation) or 'erf' (the exact one, as VideoMAE,
# timm's and big_vision's ViTs use: converted weights need it; docs/method.md 'Pretrained weights').
GELUS = ('tanh', 'erf')
# What the backward pass keeps of each block's forward pass; the rest is recomputed.
REMAT_POLICIES = {
    'none': None,  # no rematerialisation: every activation is kept
    'full': jax.checkpoint_policies.nothing_saveable,  # keep the block input only
    'dots_saveable': jax.checkpoint_policies.dots_saveable,  # keep matmul outputs
    # keep the Dense outputs, recompute the attention products (q k^T, p v) that grow as N^2
    'dots_with_no_batch_dims_saveable': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
_ACT = ('batch', 'length', 'embed')  # logical names of token activations
_HEADS = ('batch', 'length', 'heads', 'kv')  # q, k, v and attention output per head
_HIDDEN = ('batch', 'length', 'mlp')  # MLP hidden activations
# Conv stem: kernels [t, h, w, in, out] (the mesh rules replicate these small kernels) and
# activations [B, T, H, W, C] split over the batch only.
_CONV_KERNEL = ('conv_t', 'conv_h', 'conv_w', 'conv_in', 'conv_out')
_CONV_ACT = ('batch', None, None, None, None)


def _gelu(x, kind):
  if kind not in GELUS:
    raise ValueError(f'Unknown gelu {kind!r}; expected one of {GELUS}.')
  return nn.gelu(x, approximate=kind == 'tanh')


def _layer_norm(name, dtype):
  return nn.LayerNorm(epsilon=1e-6, dtype=dtype, name=name,
                      scale_init=partitioned(('embed',), nn.initializers.ones),
                      bias_init=partitioned(('embed',), nn.initializers.zeros))


def sincos_table(num_positions, width):
  """VideoMAE's fixed 1D sinusoid table over flattened token positions, float32 [N, D]."""
  pos = np.arange(num_positions, dtype=np.float64)[:, None]
  rate = np.power(10000.0, 2 * (np.arange(width) // 2) / width)[None, :]
  table = pos / rate
  table[:, 0::2] = np.sin(table[:, 0::2])
  table[:, 1::2] = np.cos(table[:, 1::2])
  return table.astype(np.float32)


class AddPositionEmbedding(nn.Module):
  """Adds a learned or fixed-sincos position embedding to tokens [B, N, D]."""
  kind: str = 'learned'

  @nn.compact
  def __call__(self, x):
    _, n, d = x.shape
    if self.kind == 'sincos':
      return x + jnp.asarray(sincos_table(n, d), x.dtype)[None]
    if self.kind != 'learned':
      raise ValueError(f'Unknown posemb {self.kind!r}; expected one of {POSEMB_KINDS}.')
    pe = self.param('pos_embedding', partitioned((None, 'length', 'embed'), nn.initializers.normal(stddev=0.02)), (1, n, d))
    return x + pe.astype(x.dtype)


class MlpBlock(nn.Module):
  """Dense -> GELU -> dropout -> Dense -> dropout; `gelu` one of GELUS."""
  mlp_dim: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  gelu: str = 'tanh'

  @nn.compact
  def __call__(self, x, *, train):
    width = x.shape[-1]
    y = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=partitioned(('embed', 'mlp'), _KERNEL_INIT),
                 bias_init=partitioned(('mlp',), nn.initializers.zeros), name='fc1')(x)
    y = _gelu(nn.with_logical_constraint(y, _HIDDEN), self.gelu)
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    y = nn.Dense(width, dtype=self.dtype, kernel_init=partitioned(('mlp', 'embed'), _KERNEL_INIT),
                 bias_init=partitioned(('embed',), nn.initializers.zeros), name='fc2')(y)
    return nn.Dropout(self.dropout_rate)(y, deterministic=not train)


def _flat_init(init, in_ndim):
  """`init` on the kernel flattened to 2-D (in, out), reshaped back: DenseGeneral's fan-in/out."""
  def fn(key, shape, dtype=jnp.float32):
    flat = (int(np.prod(shape[:in_ndim])), int(np.prod(shape[in_ndim:])))
    return init(key, flat, dtype).reshape(shape)
  return fn


class HeadsDense(nn.Module):
  """A Dense between token channels [.., D] and heads [.., H, Dh], as an explicit einsum.

  Same parameters (names, shapes, initial values) as `nn.DenseGeneral` with a (H, Dh) output
  (`to_heads`) or axis=(-2, -1) input, but the 3-D kernel is created and used as 3-D:
  DenseGeneral reshapes its kernel to 2-D inside the initialiser, and under a global mesh the
  logical constraint of the boxed 3-D kernel is then applied to the 2-D array, which fails.
  """
  features: int  # D (to_heads: the input width is read from x)
  num_heads: int
  to_heads: bool
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    init = nn.initializers.xavier_uniform()
    head_dim = self.features // self.num_heads
    if self.to_heads:
      shape, names, in_ndim = (x.shape[-1], self.num_heads, head_dim), ('embed', 'heads', 'kv'), 1
      bias_shape, bias_names, eq = (self.num_heads, head_dim), ('heads', 'kv'), '...d,dhk->...hk'
    else:
      shape, names, in_ndim = (self.num_heads, head_dim, self.features), ('heads', 'kv', 'embed'), 2
      bias_shape, bias_names, eq = (self.features,), ('embed',), '...hk,hkd->...d'
    kernel = self.param('kernel', partitioned(names, _flat_init(init, in_ndim)), shape)
    bias = self.param('bias', partitioned(bias_names, nn.initializers.zeros), bias_shape)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return jnp.einsum(eq, x, kernel) + bias


class SelfAttention(nn.Module):
  """Multi-head self-attention through `jax.nn.dot_product_attention`; heads are the axis a
  'tensor' mesh axis splits (Megatron-style: q/k/v split by column, the output by row)."""
  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    width = x.shape[-1]

    def project(name):
      y = HeadsDense(width, self.num_heads, True, self.dtype, name=name)(x)
      return nn.with_logical_constraint(y, _HEADS)

    y = jax.nn.dot_product_attention(project('query'), project('key'), project('value'))
    y = nn.with_logical_constraint(y, _HEADS)
    return HeadsDense(width, self.num_heads, False, self.dtype, name='out')(y)


class EncoderBlock(nn.Module):
  """Pre-norm transformer block with dropout and stochastic depth (per-sample drop path)."""
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  drop_path_rate: float = 0.0
  dtype: Any = jnp.float32
  gelu: str = 'tanh'

  @nn.compact
  def __call__(self, x, train):  # `train` positional: nn.remat marks it static by position
    # Dropping a whole residual branch per sample = dropout broadcast over tokens and channels.
    drop_path = nn.Dropout(self.drop_path_rate, broadcast_dims=(1, 2))
    y = SelfAttention(self.num_heads, self.dtype, name='attention')(
        _layer_norm('norm1', self.dtype)(x))
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    x = x + drop_path(y, deterministic=not train)
    y = MlpBlock(self.mlp_dim, self.dropout_rate, self.dtype, self.gelu, name='mlp')(
        _layer_norm('norm2', self.dtype)(x), train=train)
    x = x + drop_path(y, deterministic=not train)
    return nn.with_logical_constraint(x, _ACT)


def block_class(remat='none'):
  """EncoderBlock, wrapped in `nn.remat` with the named policy of REMAT_POLICIES unless 'none'.

  Parameter names and values do not depend on the policy, only memory and recomputation do.
  """
  if remat not in REMAT_POLICIES:
    raise ValueError(f'Unknown remat policy {remat!r}; expected one of {tuple(REMAT_POLICIES)}.')
  if remat == 'none':
    return EncoderBlock
  # static_argnums counts `self` as 0: `train` (a Python bool) picks dropout on or off.
  return nn.remat(EncoderBlock, policy=REMAT_POLICIES[remat], static_argnums=(2,))


class Encoder(nn.Module):
  """A stack of EncoderBlocks; drop-path rate grows linearly from 0 to `stochastic_depth`."""
  depth: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  stochastic_depth: float = 0.0
  dtype: Any = jnp.float32
  remat: str = 'none'
  gelu: str = 'tanh'

  @nn.compact
  def __call__(self, x, *, train):
    block = block_class(self.remat)
    for i in range(self.depth):
      rate = self.stochastic_depth * i / max(self.depth - 1, 1)
      x = block(self.num_heads, self.mlp_dim, self.dropout_rate, rate, self.dtype, self.gelu,
                name=f'block_{i:02d}')(x, train)
    return x


def conv_stem_channels(size, channels=()):
  """Channels of the 'conv' stem's convs: `channels`, or by default log2(patch) convs starting
  at width / 12 (at least 8) and doubling: 16-32-64-128 for a /16 ViT-Ti, the layout measured
  on the embedded data (Xiao et al.'s 24-48-96-192 costs 1.4x the step on 2 CPU cores)."""
  if channels:
    return tuple(int(c) for c in channels)
  n = int(np.log2(size.patch_size))
  if 2 ** n != size.patch_size or n < 1:
    raise ValueError(f"stem='conv' needs a power-of-two patch size, got {size.patch_size}; "
                     'give stem_channels with one entry per conv instead.')
  return tuple(max(size.width // 12, 8) * 2 ** i for i in range(n))


def conv_stem_layout(patch_size, tubelet, channels, time_taps=1):
  """(kernel, strides, out channels) of each conv of ConvStem; `conv_stem_macs` walks it too.

  Conv 0 strides by (tubelet, p0, p0), p0 = patch_size / 2^(k-1) for k convs, with odd kernels
  centred on each stride block that cover it and one more pixel (frame) around: 3x3x3 for
  stride (2, 2, 2). Convs 1..k-1 stride (1, 2, 2) with (time_taps, 3, 3) kernels.
  """
  k = len(channels)
  p0 = patch_size // 2 ** (k - 1) if k else 0
  if not k or p0 < 1 or p0 * 2 ** (k - 1) != patch_size:
    raise ValueError(f'A conv stem of {k} convs (the first of stride p0, the others 2) cannot '
                     f'reach the patch size {patch_size}.')
  if time_taps not in (1, 3):
    raise ValueError(f'stem_time_taps={time_taps}; expected 1 or 3.')
  odd = lambda stride: max(3, stride + 1 + stride % 2)
  layers = [((odd(tubelet) if tubelet > 1 else 3, odd(p0), odd(p0)), (tubelet, p0, p0),
             int(channels[0]))]
  return layers + [((time_taps, 3, 3), (1, 2, 2), int(c)) for c in channels[1:]]


def _in_bounds_taps(n, kernel, stride):
  """Kernel taps that read real (not padded) inputs, summed over the 'SAME' outputs of one axis."""
  lo, _ = same_padding(n, kernel, stride)
  return sum(min(n, o * stride - lo + kernel) - max(0, o * stride - lo)
             for o in range(-(-n // stride)))


def conv_stem_macs(size, num_frames, height, width, channels=(), time_taps=1):
  """Multiply-adds of ConvStem on one [num_frames, height, width, 3] clip: its convs (taps on
  the zero padding left out, as XLA's count does) and the 1x1 projection; norms and GELU left
  out. From `conv_stem_layout`, as the module."""
  macs, cin, shape = 0, 3, (num_frames, height, width)
  for kernel, strides, cout in conv_stem_layout(size.patch_size, size.tubelet,
                                                conv_stem_channels(size, channels), time_taps):
    taps = np.prod([_in_bounds_taps(n, k, st) for n, k, st in zip(shape, kernel, strides)])
    macs += int(taps) * cin * cout
    shape = tuple(-(-n // st) for n, st in zip(shape, strides))  # 'SAME': ceil(n / stride)
    cin = cout
  return macs + int(np.prod(shape)) * cin * size.width


class StemConv(nn.Module):
  """A bias-free 'SAME' conv3d (`conv3d_per_tap`); kernel [kt, kh, kw, in, out] (he init)."""
  features: int
  kernel_size: tuple
  strides: tuple
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', partitioned(_CONV_KERNEL, nn.initializers.he_normal()),
                        tuple(self.kernel_size) + (x.shape[-1], self.features))
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    return conv3d_per_tap(x, kernel, self.strides)


class ConvStem(nn.Module):
  """Video [B, T, H, W, C] -> tokens [B, T/tubelet, H/patch, W/patch, D] by strided convs.

  Conv i (`StemConv`, no bias; kernels and strides from `conv_stem_layout`) is followed by
  `norm` and GELU; a 1x1x1 conv with bias projects to D. Conv 0 strides by (tubelet, p0, p0),
  p0 = patch_size / 2^(k-1) for k convs (3x3x3 of stride 2 in the default layout), convs
  1..k-1 by (1, 2, 2) with 3x3 kernels over `time_taps` frames. The strides multiply to
  (tubelet, patch, patch), so the token grid is the patch stem's.

  Attributes:
    width: D, the token width.
    patch_size: spatial stride in all.
    tubelet: temporal stride (of the first conv).
    channels: output channels of each strided conv (k = len(channels)).
    norm: 'batch' (BatchNorm; running averages in the 'batch_stats' collection), 'layer'
      (LayerNorm over channels, per position: no batch statistics; measured not to learn on
      the embedded data, see the module docstring) or 'none'.
    time_taps: frames seen by convs 1..k-1 (1 or 3; 1 costs a third).
    bn_momentum: BatchNorm's running-average decay (norm='batch').
    dtype: compute dtype.
  """
  width: int
  patch_size: int
  tubelet: int
  channels: tuple
  norm: str = 'batch'
  time_taps: int = 1
  bn_momentum: float = 0.99
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train):
    if self.norm not in STEM_NORMS:
      raise ValueError(f'Unknown stem norm {self.norm!r}; expected one of {STEM_NORMS}.')
    layers = conv_stem_layout(self.patch_size, self.tubelet, self.channels, self.time_taps)
    for i, (size, strides, ch) in enumerate(layers):
      x = StemConv(ch, size, strides, self.dtype, name=f'conv_{i}')(x)
      if self.norm == 'layer':
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name=f'norm_{i}',
                         scale_init=partitioned(('conv_out',), nn.initializers.ones),
                         bias_init=partitioned(('conv_out',), nn.initializers.zeros))(x)
      elif self.norm == 'batch':
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         epsilon=1e-5, dtype=self.dtype, name=f'norm_{i}',
                         scale_init=partitioned(('conv_out',), nn.initializers.ones),
                         bias_init=partitioned(('conv_out',), nn.initializers.zeros))(x)
      x = nn.with_logical_constraint(nn.gelu(x), _CONV_ACT)
    # The projection's output is the token width: split like the patch stem's ('embed').
    return nn.Conv(self.width, (1, 1, 1), dtype=self.dtype, name='proj',
                   kernel_init=partitioned(_CONV_KERNEL[:-1] + ('embed',), nn.initializers.lecun_normal()),
                   bias_init=partitioned(('embed',), nn.initializers.zeros))(x)


class ViViT(nn.Module):
  """Video transformer backbone: video [B, T, H, W, C] -> pooled features [B, D].

  Attributes:
    size: widths, depths, heads, patch and tubelet (see variants.decode_variant).
    kind: 'spatio_temporal' or 'factorised'.
    temporal_depth: blocks of the temporal transformer ('factorised' only).
    posemb: 'learned' or 'sincos' (VideoMAE's fixed table).
    dropout_rate: dropout after the embedding, attention output and MLP layers.
    stochastic_depth: largest drop-path rate (last block).
    dtype: compute dtype; parameters stay float32.
    remat: rematerialisation policy of every block, a key of REMAT_POLICIES.
    stem: tubelet embedding, 'patch' (linear; parameters `tubelet_embed`) or 'conv' (ConvStem;
      parameters under `conv_stem`). Both give the same token grid.
    stem_channels: the conv stem's conv widths (() = conv_stem_channels' default).
    stem_norm: the conv stem's norm, one of STEM_NORMS.
    stem_time_taps: frames each conv after the conv stem's first sees (1 or 3).
    bn_momentum: running-average decay of the conv stem's BatchNorm (stem_norm='batch').
    gelu: the MLPs' GELU, one of GELUS ('erf' for VideoMAE / ViT weights).
  """
  size: ViTSize
  kind: str = 'spatio_temporal'
  temporal_depth: int = 4
  posemb: str = 'learned'
  dropout_rate: float = 0.0
  stochastic_depth: float = 0.0
  dtype: Any = jnp.float32
  remat: str = 'none'
  stem: str = 'patch'
  stem_channels: tuple = ()
  stem_norm: str = 'batch'
  stem_time_taps: int = 1
  bn_momentum: float = 0.99
  gelu: str = 'tanh'

  @staticmethod
  def stem_kwargs(backbone_cfg):
    """The stem attributes from `config.model.backbone` (absent keys: the patch stem)."""
    b = backbone_cfg
    return {'stem': b.get('stem', 'patch'), 'stem_channels': tuple(b.get('stem_channels', ())),
            'stem_norm': b.get('stem_norm', 'batch'),
            'stem_time_taps': int(b.get('stem_time_taps', 1)),
            'bn_momentum': float(b.get('bn_momentum', 0.99))}

  def _embed(self, video, train):
    """Tokens [B, T', H', W', D] of `video` by the configured stem."""
    s = self.size
    if self.stem == 'conv':
      return ConvStem(s.width, s.patch_size, s.tubelet, conv_stem_channels(s, self.stem_channels),
                      norm=self.stem_norm, time_taps=self.stem_time_taps,
                      bn_momentum=self.bn_momentum, dtype=self.dtype, name='conv_stem')(
                          video, train=train)
    if self.stem != 'patch':
      raise ValueError(f'Unknown stem {self.stem!r}; expected one of {STEMS}.')
    return nn.Conv(s.width, (s.tubelet, s.patch_size, s.patch_size),
                   strides=(s.tubelet, s.patch_size, s.patch_size), padding='VALID',
                   dtype=self.dtype, name='tubelet_embed',
                   kernel_init=partitioned((None, None, None, None, 'embed'), nn.initializers.lecun_normal()),
                   bias_init=partitioned(('embed',), nn.initializers.zeros))(video)

  def _encoder(self, depth, name):
    return Encoder(depth, self.size.num_heads, self.size.mlp_dim, self.dropout_rate,
                   self.stochastic_depth, self.dtype, self.remat, self.gelu, name=name)

  @nn.compact
  def __call__(self, video, *, train):
    if video.ndim != 5:
      raise ValueError(f'ViViT expects video [B, T, H, W, C], got shape {video.shape}.')
    s = self.size
    _, t, h, w, _ = video.shape
    if t % s.tubelet or h % s.patch_size or w % s.patch_size:
      raise ValueError(f'Video shape {video.shape} is not divisible into tubelets of '
                       f'{s.tubelet}x{s.patch_size}x{s.patch_size} (frames x pixels).')
    if self.kind not in BACKBONE_KINDS:
      raise ValueError(f'Unknown backbone kind {self.kind!r}; expected one of {BACKBONE_KINDS}.')
    x = self._embed(video.astype(self.dtype), train)
    b = x.shape[0]
    if self.kind == 'spatio_temporal':
      tokens = einops.rearrange(x, 'b t h w d -> b (t h w) d')
      x = AddPositionEmbedding(self.posemb, name='posemb')(tokens)
      x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
      x = nn.with_logical_constraint(x, _ACT)
      x = self._encoder(s.depth, 'encoder')(x, train=train)
      return _layer_norm('fc_norm', self.dtype)(jnp.mean(x, axis=1))
    # Factorised encoder: space first (time slices folded into the batch), then time.
    frames = einops.rearrange(x, 'b t h w d -> (b t) (h w) d')
    x = AddPositionEmbedding(self.posemb, name='posemb_spatial')(frames)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    x = nn.with_logical_constraint(x, _ACT)
    x = self._encoder(s.depth, 'spatial_encoder')(x, train=train)
    x = einops.rearrange(_layer_norm('spatial_norm', self.dtype)(jnp.mean(x, axis=1)),
                         '(b t) d -> b t d', b=b)
    x = AddPositionEmbedding(self.posemb, name='posemb_temporal')(x)
    x = nn.with_logical_constraint(x, _ACT)
    x = self._encoder(self.temporal_depth, 'temporal_encoder')(x, train=train)
    return _layer_norm('fc_norm', self.dtype)(jnp.mean(x, axis=1))
