"""Train state and the (to-be-jitted) update steps: joint and alternating (docs/method.md §3.11, 9.5).

Joint: one gradient step on the total loss alpha * L_hal + L_cls.
Alternating: two optimiser updates on the same mini-batch, each with its own Adam moments:
  pass 'hal': the hallucination loss -> streams + CENet (+ backbone when
    `loss.hal_pass_trains_backbone`);
  pass 'cls': the classification loss, with the parameters pass 'hal' produced -> every
  trainable group. BatchNorm statistics are threaded through both forward passes, except the
  backbone's (I3D): both passes normalise with batch statistics, but only the 'cls' pass
  updates the backbone's running averages, so they take one EMA step per train step, as with
  the joint scheme (`_keep_backbone_stats`). A frozen backbone runs on its running averages and
  never changes them (`HallucinationNet.frozen_backbone`).

With `train.grad_accum_steps` = N > 1 every pass sums the loss sums and gradients of N
micro-batches (a `lax.scan`; `losses.py` for why sums) before its one optimiser update.

The step functions are pure: `step(state, batch) -> (state, metrics)`; `jit_train_step` jits
them with the trainer's shardings and donates the state.
"""
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from halluc_jax.data import batch_augment
from halluc_jax.perf import flops as flops_lib
from halluc_jax import grad_accum
from halluc_jax import losses
from halluc_jax import sharding

@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint must hold to resume bit-exactly (the data position aside).

  Attributes:
    step: int32 scalar, number of completed updates.
    params: model parameters.
    batch_stats: BatchNorm running statistics ({} when the model has none).
    opt_state: dict pass name ('joint' or 'hal'/'cls') -> optax state.
    rng: raw uint32[2] PRNG key; per-step keys are `fold_in(rng, step)`.
    ema_params: exponential moving average of `params` (`config.train.ema_decay` > 0; {} when
      off), the copy evaluation and prediction use when present.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array
  ema_params: Any = flax.struct.field(default_factory=dict)


def ema_update(ema_params, params, step, decay):
  """`decay * ema + (1 - decay) * params`, with the decay warmed up as TF's moving average does:
  min(decay, (1 + step) / (10 + step)) at the update that completes step `step + 1`, so the
  average forgets its initial copy within the first steps (docs/method.md, 'Fine-tuning
  recipe')."""
  t = step.astype(jnp.float32)
  d = jnp.minimum(jnp.float32(decay), (1.0 + t) / (10.0 + t))
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema_params, params)


def _forward(model, params, batch_stats, batch, rng):
  variables = {'params': params}
  if batch_stats:
    variables['batch_stats'] = batch_stats
  outputs, new_vars = model.apply(variables, batch['video'], train=True,
                                  rngs={'dropout': rng}, mutable=['batch_stats'])
  return outputs, new_vars.get('batch_stats', batch_stats)


def _gradients(model, objective, kind, groups, params, batch_stats, batch, rng, term_counts):
  """Loss sums, new BatchNorm statistics and the gradient of loss `kind` w.r.t. `groups`.

  The loss is `objective.reduce` of the batch's sums against `term_counts` (the whole batch's
  counts, also under gradient accumulation). Only the parameter groups in `groups` are
  differentiated; the others enter as constants, so a frozen backbone costs a forward pass only.
  """

  def loss_fn(trainable):
    outputs, new_stats = _forward(model, {**params, **trainable}, batch_stats, batch, rng)
    sums = objective.sums(kind, outputs, batch)
    return objective.reduce(kind, sums, term_counts)[0], (sums, new_stats)

  trainable = {g: params[g] for g in groups if g in params}
  (_, (sums, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
  return sums, new_stats, grads


def _pass_gradients(model, objective, kind, groups, params, batch_stats, batch, rng, num_micro,
                    micro_sharding):
  """(loss, metrics, new BatchNorm statistics, gradient) of loss `kind` on the whole batch.

  With `num_micro` > 1 the batch is split into micro-batches (`grad_accum.split`) and their
  loss sums, gradients and statistics are summed in a `lax.scan`: every micro-batch's loss is
  its sums over the whole batch's counts, so the sums are the large-batch loss, metrics and
  gradient. Every micro-batch starts from the same BatchNorm statistics and normalises with its
  own batch statistics (BatchNorm cannot see the whole batch); the running statistics are the
  mean of the micro-batches' updates, one EMA step per optimiser step as without accumulation.
  Micro-batch k draws its dropout / stochastic-depth masks from fold_in(rng, k), so they differ
  from the unaccumulated step's.
  """
  term_counts = losses.counts(batch)
  gradients = functools.partial(_gradients, model, objective, kind, groups, params, batch_stats,
                                term_counts=term_counts)
  if num_micro == 1:
    sums, stats, grads = gradients(batch, rng)
  else:
    micro = grad_accum.split(batch, num_micro, micro_sharding)

    def one(k, micro_batch):
      return gradients(micro_batch, jax.random.fold_in(rng, k))

    def body(total, xs):
      return jax.tree.map(jnp.add, total, one(*xs)), None

    first = jax.tree.map(lambda x: x[0], micro)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(one, jnp.int32(0), first))
    (sums, stats, grads), _ = jax.lax.scan(
        body, zeros, (jnp.arange(num_micro, dtype=jnp.int32), micro))
    stats = jax.tree.map(lambda x: x / num_micro, stats)
  loss, metrics = objective.reduce(kind, sums, term_counts)
  return loss, metrics, stats, grads


def _gradient_pass(model, kind, objective, tx, groups, params, batch_stats, opt_state, batch,
                   rng, num_micro=1, micro_sharding=None):
  """One forward/backward pass on loss `kind` ('total', 'hal' or 'cls') and one optimiser
  update of `groups`, over `num_micro` accumulated micro-batches. The gradient norm is over
  `groups`."""
  loss, metrics, new_stats, grads = _pass_gradients(
      model, objective, kind, groups, params, batch_stats, batch, rng, num_micro, micro_sharding)
  full_grads = {g: grads[g] if g in grads else jax.tree.map(jnp.zeros_like, p)
                for g, p in params.items()}
  updates, new_opt_state = tx.update(full_grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  return new_params, new_stats, new_opt_state, loss, metrics, optax.tree.norm(grads)


def _keep_backbone_stats(new_stats, old_stats):
  """`new_stats` with the backbone's running averages of `old_stats`.

  Applied after the alternating scheme's 'hal' pass, so that only the 'cls' pass (the one
  that runs the test-time path, on the parameters 'hal' produced) moves the backbone's
  averages: one EMA step per train step, the same horizon as the joint scheme's. The heads'
  BatchNorms (PredNet, CENet) keep their update in both passes.
  """
  if 'backbone' not in old_stats:
    return new_stats
  return {**new_stats, 'backbone': old_stats['backbone']}


def train_step(state, batch, *, model, txs, objective, schedule, groups=None,
               nan_policy='stop', grad_accum_steps=1, micro_sharding=None, ema_decay=0.0,
               augment_cfg=None, num_classes=None):
  """One training update; see the module docstring for the two schemes.

  Args:
    state: `TrainState`.
    batch: dict of arrays from the input pipeline ('video', 'label', 'valid', 'aux', ...).
    model: the Flax module.
    txs: dict from `optim.make_optimizers` ({'joint'} or {'hal', 'cls'}).
    groups: dict from `optim.pass_groups`: the parameter groups each pass differentiates
      (None: every group; correct, since `txs` zero the others, but slower).
    objective: the `losses.Objective` of `config.loss` (`losses.make`).
    schedule: the base learning-rate schedule (logged only).
    nan_policy: 'stop' (the host stops the run) or 'skip' (a non-finite update is dropped
      in-graph; 'finite' = 0 marks it).
    grad_accum_steps: N > 1 splits the batch into N micro-batches whose count-weighted
      gradients are summed before each optimiser update (each pass of the alternating scheme
      accumulates over all N before its update); see `_accumulated_gradients`.
    micro_sharding: sharding of the split batch (`grad_accum.micro_batch_sharding`).
    ema_decay: > 0 updates `state.ema_params` after the step (`ema_update`).
    augment_cfg: `config.augment`: mixup / cutmix / random erasing of the classification
      pass's batch (data/batch_augment.py); the hallucination pass sees the clean clips, whose
      descriptors its targets are.
    num_classes: C, for mixing integer labels.

  Returns:
    (new_state, metrics) where metrics holds scalars: 'loss' (alternating: alpha * the
    pass-1 hallucination loss + the pass-2 classification loss, each at the parameters its
    pass started from), 'finite', the loss helpers' metrics ('cls_loss', 'hal_loss',
    'hal_mse/<stream>', 'hal_unc/*', 'accuracy'), per-pass gradient norms, 'lr',
    'num_invalid' (videos that failed to decode) and 'num_aux_bad' (targets dropped for
    NaN/inf).
  """
  if groups is None:
    groups = {name: tuple(state.params) for name in txs}
  step_rng = jax.random.fold_in(state.rng, state.step)
  gradient_pass = functools.partial(_gradient_pass, model, objective=objective,
                                    num_micro=int(grad_accum_steps), micro_sharding=micro_sharding)
  augmenting = batch_augment.enabled(augment_cfg)
  augment = functools.partial(batch_augment.augment_classification_batch,
                              augment_cfg=augment_cfg, num_classes=num_classes)
  if 'joint' in txs:
    if augmenting and getattr(model, 'stream_dims', None):
      raise ValueError("config.augment (mixup, cutmix, random erasing) changes the clips but not "
                       "their hallucination targets: with streams use "
                       "loss.update_scheme='alternating', which augments the classification "
                       "pass only.")
    joint_batch = augment(jax.random.fold_in(step_rng, 7), batch) if augmenting else batch
    params, stats, joint_state, loss, metrics, gnorm = gradient_pass(
        'total', tx=txs['joint'], groups=groups['joint'], params=state.params,
        batch_stats=state.batch_stats, opt_state=state.opt_state['joint'], batch=joint_batch,
        rng=step_rng)
    opt_state = {'joint': joint_state}
    metrics = dict(metrics, grad_norm=gnorm)
  else:
    hal_rng, cls_rng = jax.random.split(step_rng)
    # Pass 1 runs when there are streams and something it may update (streams frozen by
    # optim.frozen_groups: nothing).
    if getattr(model, 'stream_dims', True) and groups['hal']:
      params, stats, hal_state, hal_loss, hal_metrics, hal_gnorm = gradient_pass(
          'hal', tx=txs['hal'], groups=groups['hal'], params=state.params,
          batch_stats=state.batch_stats, opt_state=state.opt_state['hal'], batch=batch,
          rng=hal_rng)
      stats = _keep_backbone_stats(stats, state.batch_stats)
    else:  # RGB-only or frozen streams: pass 1 would be a full no-op forward/backward
      params, stats, hal_state = state.params, state.batch_stats, state.opt_state['hal']
      hal_loss, hal_metrics, hal_gnorm = jnp.zeros((), jnp.float32), {}, jnp.zeros(())
    cls_batch = augment(jax.random.fold_in(cls_rng, 7), batch) if augmenting else batch
    params, stats, cls_state, cls_loss, cls_metrics, cls_gnorm = gradient_pass(
        'cls', tx=txs['cls'], groups=groups['cls'], params=params, batch_stats=stats,
        opt_state=state.opt_state['cls'], batch=cls_batch, rng=cls_rng)
    opt_state = {'hal': hal_state, 'cls': cls_state}
    metrics = {**hal_metrics, **cls_metrics, 'grad_norm_hal': hal_gnorm,
               'grad_norm_cls': cls_gnorm}
    loss = objective.total(hal_loss, cls_loss)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=stats,
                            opt_state=opt_state)
  finite = jnp.isfinite(loss)
  for k, v in metrics.items():
    if k.startswith('grad_norm'):
      finite &= jnp.isfinite(v)
  if nan_policy == 'skip':
    # Keep the old weights but still advance the step, so the data and RNG move on.
    kept = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
    new_state = kept.replace(step=state.step + 1)
  if ema_decay > 0:
    new_state = new_state.replace(
        ema_params=ema_update(state.ema_params, new_state.params, state.step, ema_decay))
  metrics = dict(metrics, loss=loss, finite=finite.astype(jnp.float32),
                 lr=schedule(state.step),
                 num_invalid=jnp.sum(1.0 - batch['valid']),
                 num_aux_bad=jnp.sum(batch['aux_bad']).astype(jnp.float32)
                 if 'aux_bad' in batch else jnp.float32(0))
  return new_state, metrics


def predict_step(variables, batch, *, model):
  """Inference forward pass (RGB only, no CENet): the model's output dict."""
  outputs = model.apply(variables, batch['video'], train=False)
  return {k: v for k, v in outputs.items() if k != 'cholesky'}


def jit_train_step(setup, grad_accum_steps=None):
  """`train_step` bound to a trainer setup, jitted with its shardings; the state is donated.

  Args:
    setup: a `setup.Setup` (config, model, txs, pass_groups, schedule, mesh, state_shardings).
    grad_accum_steps: overrides `config.train.grad_accum_steps` (e.g. to compare one step with
      and without accumulation).
  """
  config = setup.config
  n = int(config.train.get('grad_accum_steps', 1) if grad_accum_steps is None
          else grad_accum_steps)
  if n < 1:
    raise ValueError(f'config.train.grad_accum_steps={n}; expected >= 1.')
  micro_sharding = (grad_accum.micro_batch_sharding(setup.mesh, int(config.data.batch_size), n)
                    if n > 1 else None)
  step = functools.partial(
      train_step, model=setup.model, txs=setup.txs, groups=setup.pass_groups,
      objective=setup.objective, schedule=setup.schedule, nan_policy=config.train.nan_policy,
      grad_accum_steps=n, micro_sharding=micro_sharding,
      ema_decay=float(config.train.get('ema_decay', 0.0)), augment_cfg=config.get('augment'),
      num_classes=int(config.data.num_classes))
  return jax.jit(step, in_shardings=(setup.state_shardings, sharding.batch_sharding(setup.mesh)),
                 out_shardings=(setup.state_shardings, sharding.replicated(setup.mesh)),
                 donate_argnums=(0,))


def step_flops(traced):
  """Model FLOPs of one train step over all devices, from its jaxpr (`halluc_jax.perf.flops`).

  Counted on the traced, unpartitioned step (matrix products and convolutions, loop bodies
  times their trip count), so the figure is the same on every backend and with any
  `train.grad_accum_steps`. XLA's own cost analysis is not used for it: on GPU it misses the
  cuBLAS/cuDNN calls (an H200 counted 4.0 of ~35 TFLOPs for ViViT-B/16x2) and everywhere it
  counts a scan body once.

  Args:
    traced: the traced train step (`jit_train_step().trace(state, batch)`), the same trace
      that is lowered and compiled, so the step is traced once.
  """
  return flops_lib.jaxpr_flops(traced.jaxpr)


def compile_train_step(setup, state, batch):
  """(compiled train step, its `step_flops`): one trace and one compile, ahead of time.

  `state` and `batch` may be arrays or sharded `ShapeDtypeStruct`s (the dry run's).
  """
  with setup.context():
    traced = setup.jit_train_step().trace(state, batch)
    compiled = traced.lower().compile()
  return compiled, step_flops(traced)
