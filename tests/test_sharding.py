"""Sharding rules on one process: the model traces under a mesh, and parameters map to the
mesh axes the rule table names (checked on an abstract 2 x 2 x 2 mesh, no devices needed).

The multi-device training runs are in tests/test_mesh_equivalence.py.
"""
import logging
import os
import runpy

import jax
import jax.numpy as jnp
from jax.sharding import AbstractMesh, AxisType, PartitionSpec as P

from halluc_jax import sharding
from halluc_jax.models.variants import ViTSize
from halluc_jax.models.vivit import ViViT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO = jnp.zeros((2, 4, 16, 16, 3))


def _mesh_cfg(shape):
  c = runpy.run_path(os.path.join(REPO, 'configs', 'default.py'))['get_config']()
  c.mesh.shape = dict(zip(('data', 'fsdp', 'tensor'), shape))
  return c.mesh


def _abstract_variables(num_heads, context=None):
  model = ViViT(ViTSize(width=16 * num_heads, depth=1, mlp_dim=64, num_heads=num_heads,
                        patch_size=8, tubelet=2))
  init = lambda: model.init(jax.random.PRNGKey(0), VIDEO, train=False)
  if context is None:
    return jax.eval_shape(init)
  with context:
    return jax.eval_shape(init)


def test_model_initialises_under_a_mesh_with_the_rules():
  """Regression: flax's DenseGeneral constrained its reshaped 2-D kernel with the 3-D logical
  spec as soon as a mesh was in context; the attention projections now keep 3-D kernels."""
  mesh_cfg = _mesh_cfg((1, 1, 1))
  mesh = sharding.make_mesh(mesh_cfg, jax.devices()[:1])
  context = sharding.context(mesh, sharding.logical_rules(mesh_cfg))
  variables = _abstract_variables(4, context)
  kernel = variables['params']['encoder']['block_00']['attention']['query']['kernel']
  assert kernel.value.shape == (64, 4, 16)


def test_rules_shard_embed_over_fsdp_and_heads_mlp_over_tensor(caplog):
  mesh_cfg = _mesh_cfg((2, 2, 2))
  mesh = AbstractMesh((2, 2, 2), ('data', 'fsdp', 'tensor'), axis_types=(AxisType.Auto,) * 3)
  rules = sharding.logical_rules(mesh_cfg)
  specs = jax.tree.map(lambda s: s.spec,
                       sharding.param_shardings(_abstract_variables(4), mesh, rules)['params'])
  block = specs['encoder']['block_00']
  assert block['mlp']['fc1']['kernel'] == P('fsdp', 'tensor')
  assert block['mlp']['fc2']['kernel'] == P('tensor', 'fsdp')
  assert block['attention']['query']['kernel'] == P('fsdp', 'tensor', None)
  assert block['attention']['out']['kernel'] == P('tensor', None, 'fsdp')
  assert block['norm1']['scale'] == P('fsdp')
  assert specs['posemb']['pos_embedding'] == P(None, None, 'fsdp')
  # 3 heads do not split over tensor=2: those dims are replicated (jit needs even shards).
  with caplog.at_level(logging.WARNING):
    odd = sharding.param_shardings(_abstract_variables(3), mesh, rules)['params']
  query = odd['encoder']['block_00']['attention']['query']
  assert query['kernel'].spec == P('fsdp', None, None) and query['bias'].spec == P(None, None)
  assert odd['encoder']['block_00']['mlp']['fc1']['kernel'].spec == P('fsdp', 'tensor')
  assert "['query']['kernel'] dim 1 (3) over tensor" in caplog.text
