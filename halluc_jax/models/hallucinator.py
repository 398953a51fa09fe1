"""The full model: backbone -> hallucination streams + HAF -> fusion -> PredNet (+ CENet).

The backbone is ViViT (X [B, D]) or I3D (X [B, T'', C]), by `config.model.backbone.name`.

Training (`train=True`) also returns CENet's Cholesky factor for the uncertainty loss; the test
path takes RGB only and skips CENet. Parameters sit in five top-level groups, named by
`param_labels`, so the trainer can update them separately (docs/method.md §2.6, the alternating scheme):

  backbone  streams  haf  cenet  prednet
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from halluc_jax.models.cenet import CENet
from halluc_jax.models.streams import (Fusion, HeadSpec, PredNet, StreamHead, Streams,
                                       fusion_levels)
from halluc_jax.models.i3d import I3D
from halluc_jax.models.variants import decode_i3d_variant, decode_variant
from halluc_jax.models.vivit import ViViT

PARAM_GROUPS = ('backbone', 'streams', 'haf', 'cenet', 'prednet')
HALLUCINATION_PASS_GROUPS = ('streams', 'cenet')  # pass 1 of the alternating scheme (docs/method.md §3.11)
BACKBONES = ('vivit', 'i3d')


class HallucinationNet(nn.Module):
  """Video [B, T, H, W, 3] -> {'logits', 'features', 'hallucinated'[, 'cholesky']}.

  Attributes:
    backbone: a ViViT or I3D module (built by build_model).
    fusion: a Fusion module (no parameters).
    cenet: a CENet module.
    stream_dims: tuple of (name, dim), sorted; () is the RGB-only baseline (HAF + PredNet).
    num_classes: C.
    stream_head: the `HeadSpec` of the hallucination heads (its PN 'none', linear, when they
      regress standardised targets: docs/method.md, "Target standardisation").
    haf_head: the `HeadSpec` of HAF (the streams' PN, no input norm).
    haf_dim: size of the HAF stream.
    frozen_backbone: the backbone is not trained (`optim.backbone_lr_mult` = 0), so it runs in
      inference mode in training too: BatchNorm uses and keeps its running averages, no dropout.
  """
  backbone: nn.Module
  fusion: nn.Module
  cenet: nn.Module
  stream_dims: tuple
  num_classes: int
  stream_head: HeadSpec = HeadSpec()
  haf_head: HeadSpec = HeadSpec()
  haf_dim: int = 64
  frozen_backbone: bool = False

  @nn.compact
  def __call__(self, video, *, train):
    features = self.backbone(video, train=train and not self.frozen_backbone)
    hallucinated = Streams(self.stream_dims, self.stream_head, name='streams')(
        features, train=train) if self.stream_dims else {}
    haf = StreamHead(self.haf_dim, self.haf_head, name='haf')(features)
    logits = PredNet(self.num_classes, name='prednet')(self.fusion(hallucinated, haf), train=train)
    out = {'logits': logits.astype(jnp.float32), 'features': features, 'hallucinated': hallucinated}
    # CENet parameters are created at init even when init runs the test path.
    if hallucinated and (train or self.is_initializing()):
      cholesky = self.cenet(hallucinated, train=train)
      if train:
        out['cholesky'] = cholesky
    return out


class CachedFeatures(nn.Module):
  """The backbone of a run on cached features (`config.data.feature_cache`): its input already
  is X(rgb), computed once by the frozen backbone (data/feature_cache.py)."""

  @nn.compact
  def __call__(self, features, *, train):
    del train
    return features


def _model_dtype(name):
  try:
    return jnp.dtype(name)
  except TypeError as e:
    raise ValueError(f'config.model.dtype={name!r} is not a dtype name (float32, bfloat16).') from e


def build_backbone(backbone_cfg, dtype=jnp.float32):
  """The backbone named by `config.model.backbone.name` ('vivit' default, or 'i3d').

  `variant` and `overrides` are decoded by that backbone's grammar (variants.decode_variant,
  variants.decode_i3d_variant); the ViViT-only keys (kind, posemb, dropout, ...) are ignored
  by I3D, and `bn_momentum` by ViViT.
  """
  b = backbone_cfg
  name = b.get('name', 'vivit')
  overrides = dict(b.get('overrides', {}))
  remat = b.get('remat', 'none')
  if name == 'i3d':
    return I3D(decode_i3d_variant(b.variant, **overrides),
               bn_momentum=float(b.get('bn_momentum', 0.99)), dtype=dtype, remat=remat)
  if name != 'vivit':
    raise ValueError(f'config.model.backbone.name={name!r}; expected one of {BACKBONES}.')
  return ViViT(decode_variant(b.variant, **overrides), kind=b.kind,
               temporal_depth=b.temporal_depth, posemb=b.posemb, dropout_rate=b.dropout,
               stochastic_depth=b.stochastic_depth, dtype=dtype, remat=remat,
               gelu=b.get('gelu', 'tanh'), **ViViT.stem_kwargs(b))


def backbone_label(backbone_cfg):
  """A short name for logs: 'ViViT-Ti/16x2 spatio_temporal' or 'I3D-mini'."""
  if backbone_cfg.get('name', 'vivit') == 'i3d':
    return f'I3D-{backbone_cfg.variant}'
  return f'ViViT-{backbone_cfg.variant} {backbone_cfg.kind}'


def build_model(model_cfg, stream_dims, num_classes, stream_groups=None,
                standardized_targets=False, frozen_backbone=False, cached_features=False):
  """Builds a HallucinationNet from `config.model`.

  Args:
    model_cfg: the `config.model` ConfigDict (see configs/default.py).
    stream_dims: dict auxiliary stream name -> target dim (K*d); {} = RGB-only baseline.
    num_classes: number of classes C.
    stream_groups: dict name -> group for weighted-mean fusion (e.g. det1..det4 -> 'odf');
      defaults to config.model.streams.groups.
    standardized_targets: the heads regress standardised targets
      (`aux_targets.standardize_enabled(config)`): their output is then linear, as no PN
      reaches z's range; `model.streams.pn` still ends HAF.
    frozen_backbone: `config.optim.backbone_lr_mult` is 0: the backbone then runs in inference
      mode in training as well (HallucinationNet.frozen_backbone).
    cached_features: the model reads cached backbone features (`CachedFeatures`), so it has no
      backbone parameters; needs `frozen_backbone`.

  Returns:
    An un-initialised HallucinationNet; its variables are 'params' and 'batch_stats', and
    'dropout' is the only rng it needs in training.
  """
  m = model_cfg
  bad = {k: v for k, v in dict(stream_dims).items() if int(v) <= 0}
  if bad:
    raise ValueError(f'Stream dims must be positive, got {bad}.')
  dims = tuple(sorted((str(k), int(v)) for k, v in dict(stream_dims).items()))
  groups = dict(stream_groups if stream_groups is not None else m.streams.get('groups', {}))
  dtype = _model_dtype(m.dtype)
  if cached_features and not frozen_backbone:
    raise ValueError('config.data.feature_cache holds a frozen backbone\'s features: set '
                     'config.optim.backbone_lr_mult=0 (the backbone cannot train on a cache).')
  backbone = CachedFeatures() if cached_features else build_backbone(m.backbone, dtype)
  k = m.streams.num_sketches
  # HAF matches the streams when they share one size (weighted-mean fusion needs that).
  haf_dim = m.streams.haf_dim or (dims[0][1] if len({v for _, v in dims}) == 1
                                  else k * m.streams.sketch_dim)
  levels, haf_score = fusion_levels([n for n, _ in dims], groups, dict(m.fusion.get('scores', {})),
                                m.fusion.haf_score if m.fusion.haf_score > 0 else None)
  fusion = Fusion(m.fusion.mode, m.fusion.out_dim, m.fusion.seed, levels, haf_score,
                  m.fusion.beta, m.fusion.rho)
  cenet = CENet(m.cenet.structure, m.cenet.hidden_dim, m.cenet.stop_gradient,
                m.cenet.log_diag_clamp)
  pn_params = tuple(sorted((str(n), float(v)) for n, v in dict(m.streams.pn_params).items()))
  haf_head = HeadSpec(int(k), str(m.streams.pn), pn_params, dtype)
  stream_head = dataclasses.replace(
      haf_head, input_norm=str(m.streams.get('input_norm', 'none')),
      **({'pn': 'none', 'pn_params': ()} if standardized_targets else {}))
  return HallucinationNet(backbone, fusion, cenet, dims, int(num_classes), stream_head, haf_head,
                          haf_dim, frozen_backbone=bool(frozen_backbone))


def param_labels(params):
  """Labels every leaf of `params` (or `batch_stats`) with its group in PARAM_GROUPS."""
  unknown = set(params) - set(PARAM_GROUPS)
  if unknown:
    raise ValueError(f'param_labels expects the params collection with top-level keys in '
                     f'{PARAM_GROUPS}; got unexpected {sorted(unknown)} '
                     '(pass variables["params"]).')
  return {group: jax.tree_util.tree_map(lambda _, g=group: g, sub) for group, sub in params.items()}


def trainable_mask(params, groups):
  """Boolean pytree: True for leaves whose group is in `groups` (for optax.masked)."""
  unknown = set(groups) - set(PARAM_GROUPS)
  if unknown:
    raise ValueError(f'Unknown parameter groups {sorted(unknown)}; '
                     f'expected some of {PARAM_GROUPS}.')
  return jax.tree_util.tree_map(lambda label: label in groups, param_labels(params))


def hallucination_pass_groups(train_backbone):
  """Groups updated by pass 1 (hallucination loss) of the alternating scheme."""
  return HALLUCINATION_PASS_GROUPS + (('backbone',) if train_backbone else ())


def classification_pass_groups(train_streams=True):
  """Groups updated by pass 2 (classification loss) of the alternating scheme: all (the
  paper's), or all but the stream heads, which then learn from their targets only."""
  return tuple(g for g in PARAM_GROUPS if train_streams or g != 'streams')


def update_groups(loss_cfg):
  """(pass-1 groups, pass-2 groups) of the alternating scheme from `config.loss`."""
  return (hallucination_pass_groups(loss_cfg.hal_pass_trains_backbone),
          classification_pass_groups(loss_cfg.get('cls_pass_trains_streams', True)))


def resolve_streams(model_cfg, manifest=None):
  """Stream dims and groups from the extraction manifest (or config.model.streams.dims).

  Args:
    model_cfg: `config.model`; `streams.use` picks streams ((): all), `streams.groups` adds or
      overrides groups.
    manifest: parsed manifest.json ({"streams": {name: {"dim": int, "group"?: str}}}) or None.

  Returns:
    (stream_dims dict name -> dim, stream_groups dict name -> group).
  """
  if manifest is not None:
    available = {n: dict(v) for n, v in manifest['streams'].items()}
  else:
    available = {n: {'dim': int(d)} for n, d in dict(model_cfg.streams.dims).items()}
  use = tuple(model_cfg.streams.get('use', ())) or tuple(sorted(available))
  missing = [n for n in use if n not in available]
  if missing:
    source = 'the target manifest' if manifest is not None else 'config.model.streams.dims'
    raise ValueError(f'config.model.streams.use names {missing}, absent from {source} '
                     f'(available: {sorted(available)}).')
  dims = {n: int(available[n]['dim']) for n in use}
  groups = {n: available[n]['group'] for n in use if 'group' in available[n]}
  groups.update({n: g for n, g in dict(model_cfg.streams.get('groups', {})).items() if n in dims})
  return dims, groups
