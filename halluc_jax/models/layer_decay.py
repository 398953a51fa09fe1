"""Depth of every backbone parameter, for layer-wise learning-rate decay (docs/method.md,
'Fine-tuning recipe').

Layer-wise decay (BEiT, VideoMAE fine-tuning) scales the learning rate of a layer at depth
`i` of `n` by `decay ** (n - i)`: the embedding learns slowest, the last block nearly at the
full rate, and everything after the backbone (our streams, HAF, CENet, PredNet) at the full
rate. Depths:

  ViViT  the stem (tubelet_embed or conv_stem) and the position table 0; block k of the
         encoder k + 1; the factorised encoder's temporal blocks continue after the spatial
         ones, with spatial_norm and posemb_temporal at the first temporal block's depth;
         fc_norm n = all blocks + 1.
  I3D    its top-level units in network order (Conv3d_1a_7x7, Conv3d_2b_1x1, Conv3d_2c_3x3,
         Mixed_3b, ... Mixed_5c; the names sort in that order) 0, 1, ...; n = their count.
"""
import collections.abc
import re

_BLOCK = re.compile(r'^block_(\d+)$')
_VIVIT_EMBED = ('tubelet_embed', 'conv_stem', 'posemb', 'posemb_spatial')


def _vivit_depths(backbone):
  spatial = 'encoder' if 'encoder' in backbone else 'spatial_encoder'
  n_spatial = len(backbone.get(spatial, {}))
  n_temporal = len(backbone.get('temporal_encoder', {}))
  num_layers = n_spatial + n_temporal + 1
  depths = {}
  for name, sub in backbone.items():
    if name in _VIVIT_EMBED:
      depths[name] = 0
    elif name in (spatial, 'temporal_encoder'):
      offset = 1 if name == spatial else n_spatial + 1
      blocks = {}
      for block in sub:
        m = _BLOCK.match(block)
        if m is None:
          raise ValueError(f'Unexpected module {name}/{block} in the ViViT backbone.')
        blocks[block] = offset + int(m.group(1))
      depths[name] = blocks
    elif name in ('spatial_norm', 'posemb_temporal'):
      depths[name] = n_spatial + 1
    elif name == 'fc_norm':
      depths[name] = num_layers
    else:
      raise ValueError(f'No layer depth for ViViT module {name!r} (layer-wise lr decay).')
  return depths, num_layers


def _i3d_depths(backbone):
  names = sorted(backbone)
  for name in names:
    if not re.match(r'^(Conv3d|Mixed)_\d', name):
      raise ValueError(f'No layer depth for I3D module {name!r} (layer-wise lr decay).')
  return {name: i for i, name in enumerate(names)}, len(names)


def backbone_depths(backbone):
  """({top-level or nested module: depth}, number of layers n) of a backbone param tree.

  ViViT trees map 'encoder' to {block name: depth}; every other entry is one depth for the
  module's whole subtree.
  """
  if any(k.startswith(('Conv3d_', 'Mixed_')) for k in backbone):
    return _i3d_depths(backbone)
  return _vivit_depths(backbone)


def lr_scales(params, decay):
  """{param path tuple: learning-rate factor} for every backbone leaf (others are 1).

  Args:
    params: the model's params ({'backbone': ..., 'streams': ..., ...}).
    decay: the per-layer factor (1 = no decay).
  """
  depths, num_layers = backbone_depths(params['backbone'])

  def walk(tree, depth_of, path):
    out = {}
    for key, sub in tree.items():
      d = depth_of[key] if isinstance(depth_of, dict) else depth_of
      if isinstance(sub, collections.abc.Mapping):
        out.update(walk(sub, d, path + (key,)))
      else:
        out[path + (key,)] = float(decay) ** (num_layers - d)
    return out

  return walk(params['backbone'], depths, ('backbone',))
