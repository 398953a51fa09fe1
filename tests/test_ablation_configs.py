"""The ablation configs: load, override only known keys, and name the intended table row."""
import importlib.util
import os
import re

import pytest

from halluc_jax.tools import tables
from halluc_jax.data import aux_targets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED_ROWS = {
    'rgb_only': ('RGB only (baseline)', '-', '-'),
    'hal_odf': ('ODF', 'MSE', '-'),
    'hal_sdf': ('SDF', 'MSE', '-'),
    'hal_off': ('OFF', 'MSE', '-'),
    'hal_idt': ('BOW + FV1 + FV2', 'MSE', '-'),
    'hal_all_mse': ('OFF + ODF + SDF', 'MSE', '-'),
    'hal_all_unc_diag': ('OFF + ODF + SDF', 'Uncert.', 'diag'),
    'hal_all_unc_grouped': ('OFF + ODF + SDF', 'Uncert.', 'grouped'),
    'hal_all_unc_grouped_literal': ('OFF + ODF + SDF', 'Uncert.', 'grouped'),
}
ADDED_KEYS = {'name'}  # keys the ablation rows add on top of configs/default.py


def load_config(name):
  spec = importlib.util.spec_from_file_location(f'cfg_{name}',
                                                os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _flat(tree, prefix=''):
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) and v:
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


@pytest.mark.parametrize('name', sorted(EXPECTED_ROWS))
def test_config_is_default_plus_its_row(name):
  config = load_config(name).to_dict()
  default = _flat(load_config('default').to_dict())
  flat = _flat(config)
  assert config['name'] == name
  unknown = set(flat) - set(default) - ADDED_KEYS
  assert not unknown, f'configs/{name}.py sets keys absent from default.py: {unknown}'
  changed = {k for k in flat if k in default and flat[k] != default[k]}
  assert changed <= {'data.aux_dir', 'loss.hallucination', 'loss.update_scheme',
                     'model.cenet.structure', 'loss.constant_coords',
                     'model.streams.use_groups'}, changed
  assert tables.describe_setting(config) == EXPECTED_ROWS[name]
  with open(os.path.join(ROOT, 'configs', f'{name}.py')) as f:
    source = f.read()
  assert f'--config configs/{name}.py' in source
  # The docstring reports the measured row: mean +- std of top-1 over seeds.
  assert re.search(r'Result \(.+\).*:\s+val top-1\s+[0-9.]+ \+- [0-9.]+%', source), source
  # A table rendered by `halluc_jax.tools.tables --update` carries this row with its figures.
  for table in re.findall(r'<!-- table:(\S+) -->(.*?)<!-- /table:\1 -->', source, re.S):
    assert re.search(rf'^\| {name} \|.*\| [0-9.]+ ± [0-9.]+ \|', table[1], re.M), table


def test_trainer_selects_streams_by_group(tmp_path):
  from halluc_jax import setup as setup_lib  # pylint: disable=g-import-not-at-top
  manifest = {'streams': {'det_a': {'dim': 4, 'group': 'odf'}, 'det_b': {'dim': 4, 'group': 'odf'},
                          'sal': {'dim': 4, 'group': 'sdf'}, 'flow': {'dim': 4, 'group': 'off'}}}
  aux_targets.write_targets(str(tmp_path), [], manifest)
  config = load_config('hal_odf')
  config.data.aux_dir = str(tmp_path)
  dims = setup_lib.streams_in_use(config).dims
  assert sorted(dims) == ['det_a', 'det_b']


@pytest.mark.parametrize('structure', ['diag', 'grouped', 'single_block'])
def test_single_stream_row_builds_cenet_and_loss(structure):
  """hal_off has one stream: the grouped/single-block off-diagonal part is empty, not a crash."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from halluc_jax import covariance as lu  # pylint: disable=g-import-not-at-top
  from halluc_jax.models.cenet import CENet  # pylint: disable=g-import-not-at-top
  hallucinated = {'off_hofmbh': jax.random.normal(jax.random.PRNGKey(0), (3, 8))}
  cenet = CENet(structure, hidden_dim=16)
  variables = nn.meta.unbox(cenet.init(jax.random.PRNGKey(1), hallucinated, train=False))
  params = variables['params']
  params['fc2']['kernel'] = jax.random.normal(jax.random.PRNGKey(2), params['fc2']['kernel'].shape)
  out = cenet.apply({'params': params, 'batch_stats': variables['batch_stats']}, hallucinated,
                    train=False)[structure]
  residual = {'off_hofmbh': jax.random.normal(jax.random.PRNGKey(3), (3, 8))}
  loss = lu.uncertainty_loss(lu.to_layout(residual, structure), out, structure)
  # One stream: every structure reduces to a diagonal precision, -log det + sum(l_ii^2 r_i^2).
  log_diag = np.asarray(out['log_diag']).reshape(3, 8)
  r = np.asarray(residual['off_hofmbh'])
  direct = np.sum(np.exp(2 * log_diag) * r**2, -1) - 2 * np.sum(log_diag, -1)
  np.testing.assert_allclose(np.asarray(loss), direct, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name, counterpart', [('i3d', 'hal_all_unc_grouped'),
                                               ('i3d_rgb_only', 'rgb_only')])
def test_i3d_rows_differ_from_their_vivit_row_only_in_the_backbone(name, counterpart):
  """The other-backbone pair of the ablation changes the backbone and nothing else."""
  config, base = load_config(name).to_dict(), load_config(counterpart).to_dict()
  flat, flat_base = _flat(config), _flat(base)
  changed = {k for k in set(flat) | set(flat_base) if flat.get(k, KeyError) != flat_base.get(k, KeyError)}
  assert {k for k in changed if not k.startswith('model.backbone.')} == {'name'}, changed
  assert config['name'] == name and flat['model.backbone.name'] == 'i3d'
  assert flat['model.backbone.variant'] == 'mini'
  assert tables.describe_setting(config) == EXPECTED_ROWS[counterpart]
  with open(os.path.join(ROOT, 'configs', f'{name}.py')) as f:
    assert f'--config configs/{name}.py' in f.read()
