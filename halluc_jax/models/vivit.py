"""ViViT backbone (Flax Linen): tubelet embedding, pre-norm transformer, two encoder layouts.

* 'spatio_temporal': joint attention over all t*h*w tokens, mean pooling, final LayerNorm. This is
  ViViT model 1 without a class token, i.e. the VideoMAE fine-tuning layout (`fc_norm` after the
  mean), so VideoMAE-style weights map onto it one to one.
* 'factorised': ViViT model 2 (factorised encoder): a spatial transformer on each time slice,
  mean-pooled per slice, then a temporal transformer over the slice embeddings.

The backbone returns the pooled token vector X in R^D that the hallucination streams read.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from halluc_jax.models.variants import ViTSize

BACKBONE_KINDS = ('spatio_temporal', 'factorised')
POSEMB_KINDS = ('learned', 'sincos')
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


def _kernel(names, init=nn.initializers.xavier_uniform()):
  return nn.with_logical_partitioning(init, names)


def _layer_norm(name, dtype):
  return nn.LayerNorm(epsilon=1e-6, dtype=dtype, name=name,
                      scale_init=_kernel(('embed',), nn.initializers.ones),
                      bias_init=_kernel(('embed',), nn.initializers.zeros))


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
    pe = self.param('pos_embedding', _kernel((None, 'length', 'embed'),
                                             nn.initializers.normal(stddev=0.02)), (1, n, d))
    return x + pe.astype(x.dtype)


class MlpBlock(nn.Module):
  """Dense -> GELU -> dropout -> Dense -> dropout."""
  mlp_dim: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train):
    width = x.shape[-1]
    y = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=_kernel(('embed', 'mlp')),
                 bias_init=_kernel(('mlp',), nn.initializers.zeros), name='fc1')(x)
    y = nn.gelu(nn.with_logical_constraint(y, _HIDDEN))
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    y = nn.Dense(width, dtype=self.dtype, kernel_init=_kernel(('mlp', 'embed')),
                 bias_init=_kernel(('embed',), nn.initializers.zeros), name='fc2')(y)
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
    kernel = self.param('kernel', _kernel(names, _flat_init(init, in_ndim)), shape)
    bias = self.param('bias', _kernel(bias_names, nn.initializers.zeros), bias_shape)
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

  @nn.compact
  def __call__(self, x, train):  # `train` positional: nn.remat marks it static by position
    # Dropping a whole residual branch per sample = dropout broadcast over tokens and channels.
    drop_path = nn.Dropout(self.drop_path_rate, broadcast_dims=(1, 2))
    y = SelfAttention(self.num_heads, self.dtype, name='attention')(
        _layer_norm('norm1', self.dtype)(x))
    y = nn.Dropout(self.dropout_rate)(y, deterministic=not train)
    x = x + drop_path(y, deterministic=not train)
    y = MlpBlock(self.mlp_dim, self.dropout_rate, self.dtype, name='mlp')(
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

  @nn.compact
  def __call__(self, x, *, train):
    block = block_class(self.remat)
    for i in range(self.depth):
      rate = self.stochastic_depth * i / max(self.depth - 1, 1)
      x = block(self.num_heads, self.mlp_dim, self.dropout_rate, rate, self.dtype,
                name=f'block_{i:02d}')(x, train)
    return x


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
  """
  size: ViTSize
  kind: str = 'spatio_temporal'
  temporal_depth: int = 4
  posemb: str = 'learned'
  dropout_rate: float = 0.0
  stochastic_depth: float = 0.0
  dtype: Any = jnp.float32
  remat: str = 'none'

  def _encoder(self, depth, name):
    return Encoder(depth, self.size.num_heads, self.size.mlp_dim, self.dropout_rate,
                   self.stochastic_depth, self.dtype, self.remat, name=name)

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
    x = nn.Conv(s.width, (s.tubelet, s.patch_size, s.patch_size),
                strides=(s.tubelet, s.patch_size, s.patch_size), padding='VALID',
                dtype=self.dtype, name='tubelet_embed',
                kernel_init=_kernel((None, None, None, None, 'embed'),
                                    nn.initializers.lecun_normal()),
                bias_init=_kernel(('embed',), nn.initializers.zeros))(video.astype(self.dtype))
    b, nt, nh, nw, d = x.shape
    if self.kind == 'spatio_temporal':
      x = AddPositionEmbedding(self.posemb, name='posemb')(x.reshape(b, nt * nh * nw, d))
      x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
      x = nn.with_logical_constraint(x, _ACT)
      x = self._encoder(s.depth, 'encoder')(x, train=train)
      return _layer_norm('fc_norm', self.dtype)(jnp.mean(x, axis=1))
    # Factorised encoder: space first (time slices folded into the batch), then time.
    x = AddPositionEmbedding(self.posemb, name='posemb_spatial')(x.reshape(b * nt, nh * nw, d))
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    x = nn.with_logical_constraint(x, _ACT)
    x = self._encoder(s.depth, 'spatial_encoder')(x, train=train)
    x = _layer_norm('spatial_norm', self.dtype)(jnp.mean(x, axis=1)).reshape(b, nt, d)
    x = AddPositionEmbedding(self.posemb, name='posemb_temporal')(x)
    x = nn.with_logical_constraint(x, _ACT)
    x = self._encoder(self.temporal_depth, 'temporal_encoder')(x, train=train)
    return _layer_norm('fc_norm', self.dtype)(jnp.mean(x, axis=1))
