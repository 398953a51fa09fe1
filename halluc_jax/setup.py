"""One set-up of a run: streams, model, schedule, optimisers, mesh and the train-state shardings.

`Setup(config)` is what the trainer, the dry-run planner, the benchmarks and the step-level tests
build, so all of them compile the same program. Nothing is allocated until `init_state()`: the
parameters, the optimiser state and their shardings come from `jax.eval_shape`, so the planner
compiles a paper-size train step on fake devices without ever holding a weight.
`Setup(config, abstract=True)` also reads no data: the schedule's length falls back to
`ABSTRACT_STEPS_PER_EPOCH` steps per epoch instead of counting the train split (the compiled
step does not depend on it).
"""
import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils

from halluc_jax import checkpointing
from halluc_jax import losses
from halluc_jax import optim
from halluc_jax import sharding
from halluc_jax import train_step as train_step_lib
from halluc_jax.data import aux_targets
from halluc_jax.data import pipeline
from halluc_jax.models import hallucinator

ABSTRACT_STEPS_PER_EPOCH = 1000  # schedule length of a set-up that reads no data


@dataclasses.dataclass(frozen=True)
class Streams:
  """The hallucination streams of a run.

  Attributes:
    dims: name -> target dim of every stream the model hallucinates ({} = RGB only); the
      input pipeline loads exactly these targets.
    groups: name -> group ('odf', 'sdf', ...) of those streams.
  """
  dims: dict
  groups: dict


def streams_in_use(config):
  """The `Streams` of `config`: the target manifest narrowed by `model.streams.use` (names)
  and `model.streams.use_groups` (groups, e.g. ('odf',)); no manifest = `model.streams.dims`.
  """
  aux_dir = config.data.get('aux_dir', '')
  manifest = aux_targets.read_manifest(aux_dir) if aux_dir else None
  dims, groups = hallucinator.resolve_streams(config.model, manifest)
  use_groups = tuple(config.model.streams.get('use_groups', ()))
  if use_groups and dims:  # no streams at all (RGB only, no targets): nothing to narrow
    known = {groups.get(n, n) for n in dims}
    unknown = sorted(set(use_groups) - known)
    if unknown:
      where = f'the manifest in {aux_dir}' if aux_dir else 'config.model.streams.groups'
      raise ValueError(f'config.model.streams.use_groups names {unknown}, absent from {where} '
                       f'(groups there: {sorted(known)}).')
    dims = {n: d for n, d in dims.items() if groups.get(n, n) in use_groups}
    groups = {n: g for n, g in groups.items() if n in dims}
  return Streams(dims, groups)


def build_model(config, streams=None):
  """The `HallucinationNet` of `config` (streams from `streams_in_use` unless given)."""
  if streams is None:
    streams = streams_in_use(config)
  return hallucinator.build_model(config.model, streams.dims, config.data.num_classes,
                                  streams.groups or None, aux_targets.standardize_enabled(config),
                                  frozen_backbone=float(config.optim.backbone_lr_mult) <= 0,
                                  cached_features=bool(pipeline.cache_dir(config)))


def schedule_lengths(config, steps_per_epoch=None):
  """(steps_per_epoch, total_steps): from the train split's size (times
  `config.augment.repeated_aug`) unless `steps_per_epoch` is given, and `config.train` (`num_train_steps`, else `num_epochs` epochs, rounded up)."""
  if steps_per_epoch is None:
    num_videos = len(pipeline.load_split(config, config.data.train_split))
    # Repeated augmentation shows each video R times per epoch.
    repeats = pipeline.repeated_augmentation(config.get('augment'))
    steps_per_epoch = max(1, num_videos * repeats // int(config.data.batch_size))
  total = int(config.train.num_train_steps)
  if total <= 0:
    total = int(math.ceil(float(config.train.num_epochs) * steps_per_epoch))
  return int(steps_per_epoch), total


class Setup:
  """Model, optimisers, mesh and the sharded initial train state (never unsharded first).

  Attributes:
    config, mesh, rules (logical-axis rules), objective (`losses.Objective`), streams
    (`Streams`), model, steps_per_epoch,
    total_steps, schedule, txs (optimiser per pass), labels (parameter groups), pass_groups,
    batch_sharding, replicated, abstract_variables (unboxed `ShapeDtypeStruct`s),
    state_shardings, variable_shardings, abstract_state (sharded `ShapeDtypeStruct`s).
  """

  def __init__(self, config, mesh=None, *, abstract=False, steps_per_epoch=None):
    """Args:
      config: the run's ConfigDict.
      mesh: a `jax.sharding.Mesh`; default `sharding.make_mesh(config.mesh)` on all devices.
      abstract: read no data (the schedule assumes `ABSTRACT_STEPS_PER_EPOCH` steps per epoch
        unless `steps_per_epoch` is given), and allow streams without targets
        (`config.model.streams.dims`), as the dry run does.
      steps_per_epoch: overrides the count from the train split.
    """
    self.config = config
    self.mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
    self.rules = sharding.logical_rules(config.mesh)
    self.objective = losses.make(config.loss)  # validated here, not inside the traced step
    self.streams = streams_in_use(config)
    if not abstract and self.streams.dims and not config.data.get('aux_dir', ''):
      raise ValueError(f'config.model.streams.dims gives streams {sorted(self.streams.dims)} but '
                       "config.data.aux_dir is '': training needs their targets (streams "
                       'without targets are for the dry run only).')
    self.model = build_model(config, self.streams)
    if abstract and steps_per_epoch is None:
      steps_per_epoch = ABSTRACT_STEPS_PER_EPOCH
    self.steps_per_epoch, self.total_steps = schedule_lengths(config, steps_per_epoch)
    self.schedule = optim.make_schedule(config.optim, self.steps_per_epoch, self.total_steps)
    sharding.check_batch_divides(config.data.batch_size, self.mesh)
    self.batch_sharding = sharding.batch_sharding(self.mesh)
    self.replicated = sharding.replicated(self.mesh)

    video = jnp.zeros((1,) + tuple(pipeline.model_input_shape(config)), jnp.float32)

    def init_variables(rng):
      params_rng, dropout_rng = jax.random.split(rng)
      # train=True so that train-only submodules (CENet) get parameters too.
      return self.model.init({'params': params_rng, 'dropout': dropout_rng}, video, train=True)

    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(int(config.seed)))
    boxed = jax.eval_shape(init_variables, init_rng)
    var_shardings = sharding.param_shardings(boxed, self.mesh, self.rules)
    self.abstract_variables = nn.meta.unbox(boxed)
    params = self.abstract_variables['params']
    self.labels = hallucinator.param_labels(params)
    hal_groups, cls_groups = hallucinator.update_groups(config.loss)
    self.pass_groups = optim.pass_groups(config.optim, config.loss.update_scheme, hal_groups,
                                         cls_groups)
    self.txs = optim.make_optimizers(config.optim, config.loss.update_scheme, self.schedule,
                                     self.labels, hal_groups, cls_groups)
    params_sh = var_shardings['params']
    stats_sh = var_shardings.get('batch_stats', {})
    opt_sh = {k: sharding.opt_state_shardings(tx, jax.eval_shape(tx.init, params), params_sh,
                                              self.mesh) for k, tx in self.txs.items()}
    ema_decay = float(config.train.get('ema_decay', 0.0))
    if not 0 <= ema_decay < 1:
      raise ValueError(f'config.train.ema_decay={ema_decay}; expected 0 <= decay < 1 (0 = off).')
    use_ema = ema_decay > 0
    self.state_shardings = train_step_lib.TrainState(
        step=self.replicated, params=params_sh, batch_stats=stats_sh, opt_state=opt_sh,
        rng=self.replicated, ema_params=params_sh if use_ema else {})
    self.variable_shardings = {'params': params_sh, 'batch_stats': stats_sh}

    def init_state(init_rng, state_rng):
      variables = nn.meta.unbox(init_variables(init_rng))
      return train_step_lib.TrainState(
          step=jnp.zeros((), jnp.int32), params=variables['params'],
          batch_stats=variables.get('batch_stats', {}),
          opt_state={k: tx.init(variables['params']) for k, tx in self.txs.items()},
          rng=state_rng,
          ema_params=jax.tree.map(jnp.copy, variables['params']) if use_ema else {})

    self._init_state = jax.jit(init_state, out_shardings=self.state_shardings)
    self._rngs = (init_rng, state_rng)
    self.abstract_state = checkpointing.abstract_with_shardings(
        jax.eval_shape(init_state, init_rng, state_rng), self.state_shardings)
    self._predict = None

  def init_state(self):
    """The initial `TrainState`, created sharded on the mesh."""
    return self._init_state(*self._rngs)

  def context(self):
    """Mesh + logical-axis rules for tracing the model (its activation constraints apply)."""
    return sharding.context(self.mesh, self.rules)

  def jit_train_step(self, grad_accum_steps=None):
    """`train_step.train_step` bound to this set-up, jitted with its shardings."""
    return train_step_lib.jit_train_step(self, grad_accum_steps)

  def abstract_batch(self):
    """Sharded `ShapeDtypeStruct`s of one global training batch (`pipeline.train_element_spec`)."""
    return pipeline.train_element_spec(self.config, self.streams.dims, self.batch_sharding)

  def compile_train_step(self, state, batch):
    """(compiled train step, its model FLOPs): one trace and one compile, ahead of time."""
    return train_step_lib.compile_train_step(self, state, batch)

  def predict_fn(self, state):
    """batch (numpy) -> outputs, for `evaluate.evaluate`; only batch['video'] is used. With an
    EMA of the weights (`config.train.ema_decay` > 0) the EMA copy is evaluated, with the
    current BatchNorm statistics."""
    params = state.ema_params if state.ema_params else state.params
    variables = {'params': params, 'batch_stats': state.batch_stats}
    if self._predict is None:  # one jitted function, so periodic evals compile only once
      self._predict = jax.jit(
          lambda v, x: train_step_lib.predict_step(v, {'video': x}, model=self.model),
          in_shardings=(self.variable_shardings, self.batch_sharding),
          out_shardings=self.batch_sharding)

    def fn(batch):
      video = pipeline.device_put_batch(batch['video'], self.batch_sharding)
      # This process's rows, aligned with its batch; evaluate gathers the processes' views.
      return multihost_utils.global_array_to_host_local_array(
          self._predict(variables, video), self.mesh, self.batch_sharding.spec)
    return fn
