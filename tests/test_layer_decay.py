"""Layer-wise learning-rate decay (`optim.layer_decay`; halluc_jax/models/layer_decay.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import configs_for_tests
from halluc_jax import optim
from halluc_jax import setup as setup_lib
from halluc_jax.models import hallucinator
from halluc_jax.models import layer_decay


def _abstract_backbone(name, **overrides):
  c = configs_for_tests.load(name, 'tiny')
  for key, value in overrides.items():
    c.model.backbone[key] = value
  c.data.aux_dir = ''
  return setup_lib.Setup(c, abstract=True, steps_per_epoch=2).abstract_state.params['backbone']


def test_vivit_depths_embedding_blocks_norm():
  backbone = _abstract_backbone('default')
  depths, n = layer_decay.backbone_depths(backbone)
  blocks = sorted(backbone['encoder'])
  assert n == len(blocks) + 1
  assert depths['posemb'] == 0 and depths['fc_norm'] == n
  assert [depths['encoder'][b] for b in blocks] == list(range(1, len(blocks) + 1))
  stem = 'conv_stem' if 'conv_stem' in backbone else 'tubelet_embed'
  assert depths[stem] == 0


def test_factorised_vivit_temporal_blocks_follow_the_spatial_ones():
  backbone = _abstract_backbone('default', kind='factorised', temporal_depth=2)
  depths, n = layer_decay.backbone_depths(backbone)
  spatial = len(backbone['spatial_encoder'])
  assert n == spatial + 2 + 1
  assert depths['temporal_encoder'] == {'block_00': spatial + 1, 'block_01': spatial + 2}
  assert depths['spatial_norm'] == depths['posemb_temporal'] == spatial + 1


def test_i3d_depths_follow_network_order():
  backbone = _abstract_backbone('i3d')
  depths, n = layer_decay.backbone_depths(backbone)
  order = sorted(depths, key=depths.get)
  assert order[0] == 'Conv3d_1a_7x7' and order[-1] == 'Mixed_5c' and n == len(order)
  scales = layer_decay.lr_scales({'backbone': backbone}, 0.5)
  first = [v for k, v in scales.items() if k[1] == 'Conv3d_1a_7x7']
  last = [v for k, v in scales.items() if k[1] == 'Mixed_5c']
  assert set(first) == {0.5 ** n} and set(last) == {0.5}


def test_unknown_module_is_an_error():
  with pytest.raises(ValueError, match='extra'):
    layer_decay.backbone_depths({'encoder': {'block_00': {}}, 'extra': {}})


def _params():
  rng = np.random.default_rng(0)
  leaf = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)
  params = {g: {'kernel': leaf(3, 2)} for g in hallucinator.PARAM_GROUPS}
  params['backbone'] = {'posemb': {'pos_embedding': leaf(1, 4, 2)},
                        'encoder': {f'block_{i:02d}': {'kernel': leaf(2, 2)} for i in range(3)},
                        'fc_norm': {'scale': leaf(2)}}
  return params


@pytest.mark.parametrize('optimizer', ['adam', 'adamw'])
def test_each_backbone_update_is_scaled_by_decay_to_its_layers_above(optimizer):
  params = _params()
  grads = jax.tree.map(lambda p: 0.1 * p + 0.01, params)
  labels = hallucinator.param_labels(params)
  cfg = configs_for_tests.load('default', 'tiny').optim
  cfg.optimizer, cfg.clip_norm = optimizer, 0.0

  def update(decay):
    cfg.layer_decay = decay
    tx = optim.make_optimizers(cfg, 'joint', optax.constant_schedule(1e-2), labels)['joint']
    return tx.update(grads, tx.init(params), params)[0]

  plain, decayed = update(1.0), update(0.5)
  n = 4  # 3 blocks + 1
  want = {('posemb', 'pos_embedding'): 0.5 ** n, ('fc_norm', 'scale'): 1.0,
          **{('encoder', f'block_{i:02d}', 'kernel'): 0.5 ** (n - i - 1) for i in range(3)}}
  for path, factor in want.items():
    np.testing.assert_allclose(_at(decayed['backbone'], path), factor * _at(plain['backbone'], path),
                               rtol=1e-6)
  for group in hallucinator.PARAM_GROUPS:
    if group != 'backbone':
      np.testing.assert_array_equal(decayed[group]['kernel'], plain[group]['kernel'])
  cfg.layer_decay = 0.0
  with pytest.raises(ValueError, match='layer_decay'):
    optim.make_optimizers(cfg, 'joint', optax.constant_schedule(1e-2), labels)


def _at(tree, path):
  for key in path:
    tree = tree[key]
  return np.asarray(tree)
