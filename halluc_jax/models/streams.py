"""Hallucination streams, HAF, fusion and PredNet (docs/method.md §2.2-2.4, 3.12).

A stream head maps the backbone's X to K sketches of d dims each, power-normalised per sketch:
a pooled vector X [B, D] (ViViT) through Dense -> PN; a temporal map X [B, T'', C] (I3D) through
a conv spanning all T'' positions -> ReLU -> Dense -> PN (docs/method.md, 'I3D backbone and
head'). HAF is the same head with no target. Fusion is either the fixed count
sketch P_tot of the concatenation (Eq. 20, default) or the weighted mean with group levels
(Eq. 21-22): members of a group (e.g. four detectors -> 'odf') are averaged first, then the groups,
the ungrouped streams and HAF. PredNet is BatchNorm -> Dense(C).
"""
import dataclasses
from typing import Any

import einops
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from halluc_jax.descriptors.power_norm import power_normalize
from halluc_jax.descriptors.sketch import CountSketch
from halluc_jax.models.partitioning import partitioned

_KERNEL_INIT = nn.initializers.lecun_normal()  # default kernel initialiser of this module

FUSION_MODES = ('concat_sketch', 'weighted_mean')


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  """What the heads of one kind share (the stream heads, or HAF).

  Attributes:
    num_sketches: K; must divide the head's dim.
    pn: power-normalisation name (power_norm.PN_NAMES) at the end of the head.
    pn_params: tuple of (name, value) parameters of the PN (e.g. (('gamma', 100.0),)).
    dtype: compute dtype of the conv and Dense; PN runs in float32.
    input_norm: 'none' (the paper's head) or 'batch': BatchNorm on the Dense's input, so the
      head sees each feature's variation across videos at unit scale (docs/method.md, 'Stream
      heads').
  """
  num_sketches: int = 1
  pn: str = 'asinhe'
  pn_params: tuple = (('gamma', 100.0),)
  dtype: Any = jnp.float32
  input_norm: str = 'none'


class StreamHead(nn.Module):
  """X -> [temporal conv -> ReLU ->] Dense(K*d) -> PN of each of the K sketches; float32 [B, K*d].

  X [B, D]: Dense -> PN (the head of pooled-vector backbones). X [B, T'', C]: first a conv whose
  kernel spans all T'' temporal positions (so T'' -> 1; as many filters as X has channels, i.e.
  1024 for the published I3D and scaled with a narrower variant's width) and a ReLU, then the
  same Dense -> PN. One Dense with K*d outputs equals K independent d-dim heads concatenated;
  the PN is applied per d-dim sketch because SigmE/AxMin normalise by the sketch's own l2 norm.

  Attributes:
    dim: output size K*d.
    spec: the `HeadSpec` (K, PN, dtype, input norm).
  """
  dim: int
  spec: HeadSpec = HeadSpec()

  @nn.compact
  def __call__(self, x, *, train=False):
    spec = self.spec
    if self.dim % spec.num_sketches:
      raise ValueError(f'Stream {self.name!r}: dim {self.dim} is not a multiple of the '
                       f'{spec.num_sketches} sketches per stream.')
    if x.ndim not in (2, 3):
      raise ValueError(f'Stream {self.name!r}: expects X [B, D] or [B, T, C], got {x.shape}.')
    in_names = ('embed', 'stream')
    if x.ndim == 3:
      _, steps, channels = x.shape
      x = nn.Conv(channels, (steps,), padding='VALID', dtype=spec.dtype, name='temporal_conv',
                  kernel_init=partitioned((None, 'embed', 'stream_hidden'), _KERNEL_INIT),
                  bias_init=partitioned(('stream_hidden',), nn.initializers.zeros))(x)
      x = nn.relu(x[:, 0])
      in_names = ('stream_hidden', 'stream')
    if spec.input_norm == 'batch':
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name='input_norm',
                       scale_init=partitioned(in_names[:1], nn.initializers.ones),
                       bias_init=partitioned(in_names[:1], nn.initializers.zeros))(
                           x.astype(jnp.float32)).astype(x.dtype)
    elif spec.input_norm != 'none':
      raise ValueError(f"config.model.streams.input_norm={spec.input_norm!r}; expected 'none' or "
                       "'batch'.")
    y = nn.Dense(self.dim, dtype=spec.dtype, name='fc',
                 kernel_init=partitioned(in_names, _KERNEL_INIT),
                 bias_init=partitioned(('stream',), nn.initializers.zeros))(x)
    # PN per sketch: K sketches of d coordinates each (docs/method.md §9.6).
    y = einops.rearrange(y.astype(jnp.float32), '... (k d) -> ... k d', k=spec.num_sketches)
    return einops.rearrange(power_normalize(y, spec.pn, **dict(spec.pn_params)),
                            '... k d -> ... (k d)')


class Streams(nn.Module):
  """One StreamHead per auxiliary stream: X ([B, D] or [B, T'', C]) -> {name: [B, dim]}.

  Attributes:
    stream_dims: tuple of (name, dim) pairs, sorted by name.
    spec: the `HeadSpec` every head shares.
  """
  stream_dims: tuple
  spec: HeadSpec = HeadSpec()

  @nn.compact
  def __call__(self, x, *, train=False):
    return {name: StreamHead(dim, self.spec, name=name)(x, train=train)
            for name, dim in self.stream_dims}


def stream_weights(scores, beta, rho=0.1):
  """Eq. 22 weights without the outer 1/|T| (docs/method.md §9.12).

  w_i = max(s_i^beta, rho) / sum_j max(s_j^beta, rho), so the weights sum to 1.

  Args:
    scores: sequence of positive per-stream scores w'_i (e.g. validation accuracies).
    beta: sharpness; 0 gives equal weights, large beta approaches winner-take-all.
    rho: floor on each un-normalised weight.

  Returns:
    float32 numpy weights summing to 1.
  """
  s = np.asarray(scores, np.float64)
  if s.ndim != 1 or s.size == 0 or np.any(s <= 0):
    raise ValueError(f'stream_weights needs a non-empty vector of positive scores, got {scores}.')
  raw = np.maximum(s ** float(beta), rho)
  return (raw / raw.sum()).astype(np.float32)


def fusion_levels(names, groups, scores, haf_score=None):
  """The two-level weighted-mean levels: [(group, [(stream, score)...], group_score)] plus HAF.

  Streams sharing a group (e.g. det1..det4 -> 'odf') are averaged first; a stream without a group
  is its own group. A group's score is the mean of its members' scores. HAF's score defaults to
  1 / (number of top-level entries), the paper's w'_haf = 1 / (|H*| + 1).

  Args:
    names: stream names (sorted).
    groups: dict name -> group name (missing names are their own group).
    scores: dict name -> score w'_i (missing names score 1).
    haf_score: HAF's score or None for the paper's default.

  Returns:
    (levels, haf_score): levels is a tuple of (group, ((stream, score), ...), group_score).
  """
  members = {}
  for name in names:
    members.setdefault(groups.get(name, name), []).append((name, float(scores.get(name, 1.0))))
  levels = tuple((g, tuple(m), float(np.mean([s for _, s in m]))) for g, m in sorted(members.items()))
  if haf_score is None:
    haf_score = 1.0 / (len(levels) + 1)
  return levels, float(haf_score)


class Fusion(nn.Module):
  """Aggregates {stream: [B, m]} and HAF [B, m_haf] into psi'_tot; no trainable parameters.

  Attributes:
    mode: 'concat_sketch' (Eq. 20) or 'weighted_mean' (Eq. 21-22).
    out_dim: d'_tot of P_tot for 'concat_sketch' (0 keeps the plain concatenation, P = I).
    sketch_seed: seed of P_tot.
    levels: fusion_levels(...)[0]; used by 'weighted_mean'.
    haf_score: fusion_levels(...)[1].
    beta, rho: Eq. 22 parameters (fixed here; the beta search rebuilds the model).
  """
  mode: str = 'concat_sketch'
  out_dim: int = 512
  sketch_seed: int = 1234
  levels: tuple = ()
  haf_score: float = 1.0
  beta: float = 0.0
  rho: float = 0.1

  def __call__(self, hallucinated, haf):
    names = sorted(hallucinated)
    if self.mode == 'concat_sketch':
      psi_tot = jnp.concatenate([hallucinated[n] for n in names] + [haf], axis=-1)
      if not self.out_dim:
        return psi_tot
      return CountSketch(psi_tot.shape[-1], self.out_dim, self.sketch_seed)(psi_tot)
    if self.mode != 'weighted_mean':
      raise ValueError(f'Unknown fusion mode {self.mode!r}; expected one of {FUSION_MODES}.')
    dims = {n: v.shape[-1] for n, v in hallucinated.items()}
    if len(set(dims.values()) | {haf.shape[-1]}) > 1:
      raise ValueError(f'Weighted-mean fusion sums vectors, so all streams and HAF need one dim; '
                       f'got {dims} and haf {haf.shape[-1]}.')
    entries, scores = [], []
    for _, members, group_score in self.levels:
      w = stream_weights([s for _, s in members], self.beta, self.rho)
      entries.append(sum(float(wi) * hallucinated[n] for wi, (n, _) in zip(w, members)))
      scores.append(group_score)
    w = stream_weights(scores + [self.haf_score], self.beta, self.rho)
    return sum(float(wi) * v for wi, v in zip(w, entries + [haf]))


class PredNet(nn.Module):
  """BatchNorm -> Dense(C); float32 logits."""
  num_classes: int

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name='bn',
                     scale_init=partitioned(('fused',), nn.initializers.ones),
                     bias_init=partitioned(('fused',), nn.initializers.zeros))(x.astype(jnp.float32))
    return nn.Dense(self.num_classes, name='fc', kernel_init=partitioned(('fused', 'classes'), _KERNEL_INIT),
                    bias_init=partitioned(('classes',), nn.initializers.zeros))(x)
