"""Train state and the (to-be-jitted) update steps: joint and alternating (SPEC.md 3.11, 9.5).

Joint: one gradient step on the total loss alpha * L_hal + L_cls.
Alternating: two optimiser updates on the same mini-batch, each with its own Adam moments:
  pass 'hal': the hallucination loss -> streams + CENet (+ backbone when
    `loss.hal_pass_trains_backbone`);
  pass 'cls': the classification loss, with the parameters pass 'hal' produced -> every
  trainable group. BatchNorm statistics are threaded through both forward passes.

The step functions are pure: `step(state, batch) -> (state, metrics)`; `train.py` jits them
with explicit shardings and donates the state.
"""
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from halluc_jax import losses


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint must hold to resume bit-exactly (the data position aside).

  Attributes:
    step: int32 scalar, number of completed updates.
    params: model parameters.
    batch_stats: BatchNorm running statistics ({} when the model has none).
    opt_state: dict pass name ('joint' or 'hal'/'cls') -> optax state.
    rng: raw uint32[2] PRNG key; per-step keys are `fold_in(rng, step)`.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array


def _forward(model, params, batch_stats, batch, rng):
  variables = {'params': params}
  if batch_stats:
    variables['batch_stats'] = batch_stats
  outputs, new_vars = model.apply(variables, batch['video'], train=True,
                                  rngs={'dropout': rng}, mutable=['batch_stats'])
  return outputs, new_vars.get('batch_stats', batch_stats)


def _gradient_pass(model, loss_fn, tx, groups, params, batch_stats, opt_state, batch, rng):
  """One forward/backward pass on `loss_fn` and one optimiser update of `groups`.

  Only the parameter groups in `groups` are differentiated; the others enter as constants, so
  a frozen backbone costs a forward pass only. The gradient norm is over `groups`.
  """

  def objective(trainable):
    outputs, new_stats = _forward(model, {**params, **trainable}, batch_stats, batch, rng)
    loss, metrics = loss_fn(outputs, batch)
    return loss, (metrics, new_stats)

  trainable = {g: params[g] for g in groups if g in params}
  (loss, (metrics, new_stats)), grads = jax.value_and_grad(objective, has_aux=True)(trainable)
  full_grads = {g: grads[g] if g in grads else jax.tree.map(jnp.zeros_like, p)
                for g, p in params.items()}
  updates, new_opt_state = tx.update(full_grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  return new_params, new_stats, new_opt_state, loss, metrics, optax.tree.norm(grads)


def train_step(state, batch, *, model, txs, loss_cfg, schedule, groups=None,
               nan_policy='stop'):
  """One training update; see the module docstring for the two schemes.

  Args:
    state: `TrainState`.
    batch: dict of arrays from the input pipeline ('video', 'label', 'valid', 'aux', ...).
    model: the Flax module.
    txs: dict from `optim.make_optimizers` ({'joint'} or {'hal', 'cls'}).
    groups: dict from `optim.pass_groups`: the parameter groups each pass differentiates
      (None: every group; correct, since `txs` zero the others, but slower).
    loss_cfg: `config.loss`.
    schedule: the base learning-rate schedule (logged only).
    nan_policy: 'stop' (the host stops the run) or 'skip' (a non-finite update is dropped
      in-graph; 'finite' = 0 marks it).

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
  cls_fn = functools.partial(losses.classification_loss, loss_cfg=loss_cfg)
  hal_fn = functools.partial(losses.hallucination_loss, loss_cfg=loss_cfg)
  if 'joint' in txs:
    total_fn = functools.partial(losses.total_loss, loss_cfg=loss_cfg)
    params, stats, joint_state, loss, metrics, gnorm = _gradient_pass(
        model, total_fn, txs['joint'], groups['joint'], state.params, state.batch_stats,
        state.opt_state['joint'], batch, step_rng)
    opt_state = {'joint': joint_state}
    metrics = dict(metrics, grad_norm=gnorm)
  else:
    hal_rng, cls_rng = jax.random.split(step_rng)
    if getattr(model, 'stream_dims', True):
      params, stats, hal_state, hal_loss, hal_metrics, hal_gnorm = _gradient_pass(
          model, hal_fn, txs['hal'], groups['hal'], state.params, state.batch_stats,
          state.opt_state['hal'], batch, hal_rng)
    else:  # RGB-only: no hallucination loss, so pass 1 would be a full no-op forward/backward
      params, stats, hal_state = state.params, state.batch_stats, state.opt_state['hal']
      hal_loss, hal_metrics, hal_gnorm = jnp.zeros((), jnp.float32), {}, jnp.zeros(())
    params, stats, cls_state, cls_loss, cls_metrics, cls_gnorm = _gradient_pass(
        model, cls_fn, txs['cls'], groups['cls'], params, stats, state.opt_state['cls'], batch,
        cls_rng)
    opt_state = {'hal': hal_state, 'cls': cls_state}
    metrics = {**hal_metrics, **cls_metrics, 'grad_norm_hal': hal_gnorm,
               'grad_norm_cls': cls_gnorm}
    loss = float(loss_cfg.get('alpha', 1.0)) * hal_loss + cls_loss
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
