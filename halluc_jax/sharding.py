"""Device mesh and shardings: data parallel, FSDP and tensor parallel from one rule table.

The mesh axes come from `config.mesh.shape`, an ordered mapping such as
{'data': -1, 'fsdp': 1, 'tensor': 1}; one axis may be -1 ("all remaining devices"). Batches
are split over ('data', 'fsdp'). Parameters are placed by Flax logical-axis metadata
(`nn.with_logical_partitioning`) translated through `config.mesh.logical_axis_rules`
(default: 'embed' -> fsdp, 'heads'/'mlp' -> tensor); optimiser moments follow their parameter.
Activations are constrained inside the model (`nn.with_logical_constraint`) while `context`
is active. A mesh axis of size 1 shards nothing, so the default mesh is pure data parallel.
"""
import contextlib
import logging
import math

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

BATCH_AXES = ('data', 'fsdp')


def make_mesh(mesh_cfg, devices=None):
  """Builds a `Mesh` from `mesh_cfg.shape` (axis name -> size, one size may be -1)."""
  devices = list(jax.devices() if devices is None else devices)
  names = tuple(mesh_cfg.shape.keys())
  sizes = [int(v) for v in mesh_cfg.shape.values()]
  if sizes.count(-1) > 1:
    raise ValueError(f'config.mesh.shape={dict(mesh_cfg.shape)}: at most one axis may be -1.')
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f'config.mesh.shape={dict(mesh_cfg.shape)} does not divide the '
                       f'{len(devices)} available devices.')
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise ValueError(f'config.mesh.shape={dict(mesh_cfg.shape)} needs {math.prod(sizes)} devices; '
                     f'{len(devices)} are available.')
  for axis in BATCH_AXES:
    if axis not in names:
      raise ValueError(f'config.mesh.shape must have a {axis!r} axis (got {names}).')
  grid = np.asarray(devices, dtype=object).reshape(sizes)
  return Mesh(grid, names, axis_types=(AxisType.Auto,) * len(names))


def logical_rules(mesh_cfg):
  """The logical-axis -> mesh-axis table as the tuple of pairs Flax expects."""
  return tuple((str(k), v if v is None or isinstance(v, str) else tuple(v))
               for k, v in mesh_cfg.logical_axis_rules)


@contextlib.contextmanager
def context(mesh, rules):
  """Mesh and logical-axis rules for tracing the model: its activation constraints apply.

  Without a mesh in context flax's `nn.with_logical_constraint` is a no-op, and XLA would
  have to guess the activations' layout from the parameters' shardings alone.
  """
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield


def batch_sharding(mesh):
  """Leading (batch) dimension split over the data-parallel axes, the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES))


def check_batch_divides(batch_size, mesh):
  """Raises a ValueError naming the config when the batch does not split over BATCH_AXES."""
  shards = data_parallel_size(mesh)
  if int(batch_size) % shards:
    raise ValueError(
        f'config.data.batch_size={batch_size} does not split over the {shards} devices of the '
        f'mesh axes {BATCH_AXES} ({math.prod(mesh.shape.values())} devices in all; on the CPU backend '
        'config.train.cpu_devices sets how many): use a multiple of it.')


def replicated(mesh):
  return NamedSharding(mesh, P())


def data_parallel_size(mesh):
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def param_shardings(abstract_variables, mesh, rules):
  """Shardings for a (possibly logically boxed) variable tree from `jax.eval_shape`.

  A dimension that its mesh axes do not divide (e.g. 3 heads over tensor=2) is replicated
  instead, with a warning: jit's input/output shardings must split evenly.

  Args:
    abstract_variables: output of `jax.eval_shape(model.init, ...)`; leaves may be
      `nn.LogicallyPartitioned` boxes.
    mesh: the device mesh.
    rules: logical-axis rules, see `logical_rules`.

  Returns:
    A tree of `NamedSharding` with the structure of the *unboxed* variables.
  """
  specs = nn.get_partition_spec(abstract_variables)
  shardings = nn.logical_to_mesh_sharding(specs, mesh, rules)
  # Unboxed without constraining: under a mesh `nn.meta.unbox` would constrain abstract values.
  boxed = lambda x: isinstance(x, nn.Partitioned)
  shapes = jax.tree.map(lambda x: x.unbox(apply_constraint=False) if boxed(x) else x,
                        abstract_variables, is_leaf=boxed)
  uneven = []

  def even(path, sharding, shape):
    spec = list(sharding.spec)
    for i, axes in enumerate(spec):
      names = (axes,) if isinstance(axes, str) else tuple(axes or ())
      if shape.shape[i] % math.prod(mesh.shape[a] for a in names):
        uneven.append(f'{jax.tree_util.keystr(path)} dim {i} ({shape.shape[i]}) over {axes}')
        spec[i] = None
    return NamedSharding(mesh, P(*spec))

  shardings = jax.tree_util.tree_map_with_path(even, shardings, shapes)
  if uneven:
    logging.warning('Replicated instead of sharded (mesh axes do not divide): %s',
                    '; '.join(uneven))
  return shardings


def opt_state_shardings(tx, abstract_opt_state, params_shardings, mesh):
  """Optimiser-state shardings: moments follow their parameter, counters are replicated."""
  import optax  # pylint: disable=g-import-not-at-top
  masked = optax.MaskedNode  # groups an optimiser does not touch hold no state at all
  return optax.tree_map_params(
      tx, lambda x, s: x if isinstance(x, masked) else s, abstract_opt_state, params_shardings,
      transform_non_params=lambda _: replicated(mesh),
      is_leaf=lambda x: isinstance(x, (NamedSharding, masked)))
