"""The paper-table configs (configs/paper/): load, override only known keys, say their number.

Each builds its model abstractly at a shrunk size (same streams, classes, loss and update
groups); the full sizes are the dry-run planner's (results/plan/paper/, README 'Dry-run planner').
"""
import glob
import json
import math
import os
import re
import runpy

import flax.linen as nn
import jax
import pytest

from halluc_jax import init_from
from halluc_jax import setup as setup_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = os.path.join(ROOT, 'configs', 'paper')
NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(PAPER, '*.py'))
               if not os.path.basename(p).startswith('_'))
ADDED_KEYS = {'name'}  # configs/default.py has no row label
# Fields whose keys are the user's names (streams, size overrides), not config fields.
OPEN_DICTS = ('model.streams.dims', 'model.streams.groups', 'model.fusion.scores',
              'model.backbone.overrides')


def load(name):
  return runpy.run_path(os.path.join(PAPER, f'{name}.py'))['get_config']()


def default():
  return runpy.run_path(os.path.join(ROOT, 'configs', 'default.py'))['get_config']()


def _flat(tree, prefix=''):
  out = {}
  for k, v in tree.items():
    key = f'{prefix}{k}'
    if isinstance(v, dict) and v and key not in OPEN_DICTS and key != 'extract.stream':
      out.update(_flat(v, key + '.'))
    else:
      out[key] = v
  return out


def unknown_keys(config, base):
  """Keys of `config` that `base` (configs/default.py) does not declare; stream specs under
  extract.stream may be new names but need default's spec fields (their params are free)."""
  cfg, ref = config.to_dict(), base.to_dict()
  bad = set(_flat(cfg)) - set(_flat(ref)) - ADDED_KEYS
  spec_keys = set(next(iter(ref['extract']['stream'].values())))
  for name, spec in cfg['extract']['stream'].items():
    bad |= {f'extract.stream.{name}.{k}' for k in set(spec) ^ spec_keys}
  return bad


def test_there_is_a_config_per_paper_table():
  assert NAMES == ['charades_i3d', 'epic55_verbs_i3d', 'hmdb51_i3d', 'k400_videomae_v2_g',
                   'k600_videomae_v2_g', 'mpii_cooking_i3d', 'ssv2_videomae_v2_g',
                   'toyota_smarthome_i3d', 'yupp_i3d']


@pytest.mark.parametrize('name', NAMES)
def test_config_overrides_only_default_keys_and_names_its_paper_number(name):
  config, base = load(name), default()
  assert config.name == name
  assert not unknown_keys(config, base), unknown_keys(config, base)
  assert config.init_from.format in init_from.FORMATS and config.init_from.path == ''
  assert config.data.crop_size == 224
  m = config.model
  names = set(m.streams.dims)
  assert names and all(v == m.streams.sketch_dim * m.streams.num_sketches
                       for v in m.streams.dims.values())
  extracted = [n for n in config.extract.streams.split(',') if n]
  assert set(extracted) <= names
  for n in extracted:
    spec = config.extract.stream[n]
    assert (spec.d, spec.num_sketches) == (m.streams.sketch_dim, m.streams.num_sketches)
  assert config.loss.multi_label == config.data.multi_label
  if m.backbone.name == 'vivit':  # the large-scale protocol: VideoMAE V2-g, frozen
    assert (m.backbone.variant, config.optim.backbone_lr_mult) == ('g/14x2', 0.0)
    assert not config.loss.hal_pass_trains_backbone
  else:
    assert m.backbone.variant == 'full'
  with open(os.path.join(PAPER, f'{name}.py')) as f:
    doc = f.read().split('"""')[1]
  assert f'--config configs/paper/{name}.py' in doc
  assert re.search(r'paper Table \d+', doc, re.I)
  assert re.search(r'Paper numbers?\b.{0,200}?\d+\.\d', doc, re.S)
  assert 'Not run here (needs the dataset and the checkpoint)' in ' '.join(doc.split())
  assert not re.search(r'SPEC|/work/', doc)  # cites docs/method.md or the paper's tables


def test_an_unknown_key_fails_the_check():
  config = load('hmdb51_i3d')
  config.optim.lr_mult = 2.0
  config.extract.stream.det1.threshold = 0.5
  assert unknown_keys(config, default()) == {'optim.lr_mult', 'extract.stream.det1.threshold'}


def shrink(config):
  """`config` at a CPU size: the same streams, classes, loss, fusion and update groups."""
  d, b, m = config.data, config.model.backbone, config.model
  if b.name == 'i3d':
    b.variant = 'w0.125/111'
    d.num_frames, d.crop_size = 8, 32
  else:
    b.overrides = {'depth': 1, 'width': 32, 'mlp_dim': 64, 'num_heads': 2}
    d.num_frames, d.crop_size = 4, 28
  d.batch_size = 4
  m.streams.sketch_dim, m.streams.num_sketches = 4, 2
  m.streams.dims = {n: 8 for n in m.streams.dims}
  m.fusion.out_dim, m.cenet.hidden_dim = 32, 16
  m.dtype = 'float32'
  return config


@pytest.mark.parametrize('name', NAMES)
def test_config_builds_its_model_abstractly(name):
  config = load(name)
  streams = set(config.model.streams.dims)
  setup = setup_lib.Setup(shrink(config), abstract=True, steps_per_epoch=4)
  params = setup.abstract_variables['params']
  assert set(setup.streams.dims) == streams
  assert set(params) >= {'backbone', 'streams', 'haf', 'cenet', 'prednet'}
  classes = {leaf.shape[-1] for leaf in jax.tree.leaves(params['prednet'])}
  assert config.data.num_classes in classes
  frozen = config.optim.backbone_lr_mult == 0
  assert ('backbone' in setup.pass_groups['cls']) != frozen
  assert ('backbone' in setup.pass_groups['hal']) != frozen


@pytest.mark.parametrize('name', NAMES)
def test_planner_figures_match_the_config(name):
  """The README row's JSON (results/plan/paper/) is this config's: same streams and batch, and
  the full-size model's abstract parameter count (no weight allocated) equals the planner's."""
  with open(os.path.join(ROOT, 'results', 'plan', 'paper', f'{name}.json')) as f:
    result = json.load(f)
  config = load(name)
  assert result['streams'] == dict(config.model.streams.dims)
  assert result['global_batch'] == config.data.batch_size
  model = setup_lib.build_model(config)
  d = config.data
  clip = jax.ShapeDtypeStruct((1, d.num_frames, d.crop_size, d.crop_size, 3), jax.numpy.float32)
  variables = jax.eval_shape(lambda v: model.init({'params': jax.random.PRNGKey(0),
                                                   'dropout': jax.random.PRNGKey(1)}, v,
                                                  train=True), clip)
  params = nn.meta.unbox(variables['params'])
  counts = {g: sum(math.prod(x.shape) for x in jax.tree.leaves(sub)) for g, sub in params.items()}
  assert counts == {g: v for g, v in result['params'].items() if g != 'total'}
