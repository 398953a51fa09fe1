"""Initialising a fresh run's backbone from a published checkpoint (`config.init_from`).

  config.init_from.path    checkpoint file ('' = train from scratch)
  config.init_from.format  'videomae' (VideoMAE / VideoMAE V2, transformers or original layout;
                           halluc_jax/models/converters/videomae.py)
  config.init_from.groups  'backbone' (the only group a checkpoint's linear head cannot fill:
                           our HAF + PredNet and the streams stay at their init)

Only a run without a checkpoint of its own is initialised: a resumed run restores its own state.
Every converted array must have the shape of the model's parameter (the error names the parameter
and both shapes); the log lists what was loaded and what stays at init. The optimiser state is
the fresh one (zero Adam moments). docs/method.md, 'Pretrained weights'.
"""
import jax
import numpy as np
from absl import logging

from halluc_jax.models import variants
from halluc_jax.models.converters import state_dict as state_dict_lib
from halluc_jax.models.converters import videomae

FORMATS = ('videomae',)
GROUPS = ('backbone',)


def converted_backbone(init_cfg, model_cfg):
  """{backbone params} of the checkpoint at init_cfg.path, converted for `model_cfg`."""
  if init_cfg.format not in FORMATS:
    raise ValueError(f'config.init_from.format={init_cfg.format!r}; expected one of {FORMATS}.')
  if init_cfg.groups not in GROUPS:
    raise ValueError(f'config.init_from.groups={init_cfg.groups!r}; expected one of {GROUPS}.')
  backbone = model_cfg.backbone
  if backbone.get('name', 'vivit') != 'vivit' or backbone.get('stem', 'patch') != 'patch':
    raise ValueError("config.init_from format 'videomae' needs the ViViT with stem='patch' "
                     f"(have name={backbone.get('name', 'vivit')!r}, stem={backbone.get('stem')!r}).")
  size = variants.decode_variant(backbone.variant, **dict(backbone.overrides))
  params, _ = videomae.convert(state_dict_lib.load(init_cfg.path), num_heads=size.num_heads)
  return params


def merge(current, loaded, prefix='backbone'):
  """`current` with the arrays of `loaded` put in (same tree paths); (tree, loaded names, kept)."""
  flat_current = {jax.tree_util.keystr(p): v for p, v in
                  jax.tree_util.tree_flatten_with_path(current)[0]}
  flat_loaded = {jax.tree_util.keystr(p): v for p, v in
                 jax.tree_util.tree_flatten_with_path(loaded)[0]}
  unknown = sorted(set(flat_loaded) - set(flat_current))
  if unknown:
    raise ValueError(f'The checkpoint has {prefix} parameters the model lacks: {unknown[:8]}.')
  for name, value in flat_loaded.items():
    if tuple(np.shape(value)) != tuple(flat_current[name].shape):
      raise ValueError(f'Shape mismatch for {prefix}{name}: checkpoint {tuple(np.shape(value))}, '
                       f'model {tuple(flat_current[name].shape)}.')

  def pick(path, leaf):
    value = flat_loaded.get(jax.tree_util.keystr(path))
    if value is None:
      return leaf
    return jax.device_put(np.asarray(value, leaf.dtype), leaf.sharding)

  merged = jax.tree_util.tree_map_with_path(pick, current)
  return merged, sorted(flat_loaded), sorted(set(flat_current) - set(flat_loaded))


def apply(config, state):
  """`state` with its backbone parameters from config.init_from (unchanged without a path)."""
  init_cfg = config.get('init_from')
  if not init_cfg or not init_cfg.get('path'):
    return state
  loaded = converted_backbone(init_cfg, config.model)
  backbone, names, kept = merge(state.params['backbone'], loaded)
  logging.info('init_from %s (%s): loaded %d backbone arrays; left at init: %s and every '
               'non-backbone parameter (%s).', init_cfg.path, init_cfg.format, len(names),
               kept or 'no backbone array', ', '.join(k for k in state.params if k != 'backbone'))
  return state.replace(params=dict(state.params, backbone=backbone))
