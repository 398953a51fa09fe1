"""Optimisers and learning-rate schedules (optax), per parameter group.

Parameter groups come from `models.hallucinator.param_labels`: 'backbone', 'streams', 'haf',
'cenet', 'prednet'. Every group gets the same Adam/AdamW and schedule; the backbone's learning
rate is scaled by `optim.backbone_lr_mult` (0 freezes it with `optax.set_to_zero`, so no Adam
moments are even allocated for it; docs/method.md §9.4). The alternating scheme of docs/method.md §3.11 builds
one optimiser per pass, each restricted to the groups that pass may update. `optim.mu_dtype`
'bfloat16' stores Adam's first moment in bf16. `optim.layer_decay` < 1 scales each backbone
layer's updates by decay ** (layers above it) (models/layer_decay.py; docs/method.md,
'Fine-tuning recipe').
"""
import jax
import jax.numpy as jnp
import optax

from halluc_jax.models import layer_decay

GROUPS = ('backbone', 'streams', 'haf', 'cenet', 'prednet')


def make_schedule(optim_cfg, steps_per_epoch, total_steps):
  """Learning rate as a function of the step (`optax.Schedule`).

  Schedules:
    'halve_every': the paper's, lr * 0.5 ** floor(epoch / halve_every_epochs) (docs/method.md §7).
    'cosine': cosine decay to `lr * final_lr_frac` over the run.
    'constant': lr.
  All of them start with `warmup_steps` of linear warm-up from 0 when that is > 0.
  """
  lr = float(optim_cfg.lr)
  warmup = int(optim_cfg.warmup_steps)
  name = optim_cfg.schedule
  if name == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
        end_value=lr * float(optim_cfg.final_lr_frac))
  if name == 'halve_every':
    period = max(1, int(round(float(optim_cfg.halve_every_epochs) * steps_per_epoch)))
    main = optax.exponential_decay(lr, transition_steps=period, decay_rate=0.5, staircase=True)
  elif name == 'constant':
    main = optax.constant_schedule(lr)
  else:
    raise ValueError(f"config.optim.schedule={name!r}; expected 'halve_every', 'cosine' or "
                     "'constant'.")
  if warmup <= 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


MU_DTYPES = ('float32', 'bfloat16')


def _mu_dtype(optim_cfg):
  """Adam's first-moment dtype from `optim.mu_dtype` (None = the parameters' float32)."""
  name = str(optim_cfg.get('mu_dtype', 'float32'))
  if name not in MU_DTYPES:
    raise ValueError(f'config.optim.mu_dtype={name!r}; expected one of {MU_DTYPES}.')
  return None if name == 'float32' else jnp.dtype(name)


def _base_optimizer(optim_cfg, learning_rate, weight_decay):
  name = optim_cfg.optimizer
  # bf16 mu halves the first moment's memory. optax keeps nu (the second moment) in the
  # parameters' dtype, float32 here, which is what nu needs: with b2 = 0.999 each step moves it
  # by ~0.1%, below bf16's ~0.4% resolution. Master parameters stay float32; compute runs in
  # `config.model.dtype`.
  mu_dtype = _mu_dtype(optim_cfg)
  if name == 'adam':
    return optax.adam(learning_rate, b1=optim_cfg.b1, b2=optim_cfg.b2, eps=optim_cfg.eps,
                      mu_dtype=mu_dtype)
  if name == 'adamw':
    # No decay on biases and normalisation scales (vectors), the usual AdamW convention.
    def decay_mask(params):
      return jax.tree.map(lambda p: p.ndim > 1, params)
    return optax.adamw(learning_rate, b1=optim_cfg.b1, b2=optim_cfg.b2, eps=optim_cfg.eps,
                       weight_decay=weight_decay, mask=decay_mask, mu_dtype=mu_dtype)
  raise ValueError(f"config.optim.optimizer={name!r}; expected 'adam' or 'adamw'.")


def _weight_decay(optim_cfg, group):
  # The stream heads may take their own decay (`optim.stream_weight_decay`, < 0: the common
  # one): a linear head on a few hundred clips overfits targets the pixels barely predict.
  if group == 'streams' and float(optim_cfg.get('stream_weight_decay', -1.0)) >= 0:
    return float(optim_cfg.stream_weight_decay)
  return float(optim_cfg.weight_decay)


def scale_by_layer_decay(decay):
  """Multiplies each backbone update by its layer's factor `decay ** (n - depth)`.

  Applied to the final updates (after Adam/AdamW and their weight decay), so it is the same as
  giving each layer its own learning rate, as per-layer parameter groups do in PyTorch.
  """
  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    scales = layer_decay.lr_scales(updates, decay)
    scaled = jax.tree_util.tree_map_with_path(
        lambda path, u: u * scales.get(tuple(k.key for k in path), 1.0), updates)
    return scaled, state

  return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(optim_cfg, schedule, labels, trainable_groups=GROUPS, backbone_scale=1.0):
  """Clipped Adam/AdamW over the groups in `trainable_groups`; other groups get zero updates.

  Args:
    optim_cfg: `config.optim`.
    schedule: learning-rate schedule (see `make_schedule`).
    labels: pytree of group names with the structure of the params (or a callable params ->
      labels), from `param_labels`.
    trainable_groups: groups this optimiser may change. The backbone is further dropped when
      `optim_cfg.backbone_lr_mult == 0`.
    backbone_scale: extra factor on the backbone's learning rate in this optimiser (the
      hallucination pass's `optim_cfg.hal_pass_backbone_lr_mult`).

  Returns:
    An `optax.GradientTransformation`. Gradients of excluded groups are zeroed *before* the
    global-norm clipping, so a frozen group never changes the clipping scale.
  """
  mult = {g: 1.0 for g in GROUPS}
  mult['backbone'] = float(optim_cfg.backbone_lr_mult) * float(backbone_scale)
  active = {g for g in trainable_groups if mult[g] > 0}
  keep = {g: optax.identity() if g in active else optax.set_to_zero() for g in GROUPS}
  update = {}
  for g in GROUPS:
    if g not in active:
      update[g] = optax.set_to_zero()
    else:
      m = mult[g]
      lr = schedule if m == 1.0 else (lambda step, m=m: m * schedule(step))
      update[g] = _base_optimizer(optim_cfg, lr, _weight_decay(optim_cfg, g))
  parts = [optax.multi_transform(keep, labels)]
  if optim_cfg.clip_norm and optim_cfg.clip_norm > 0:
    parts.append(optax.clip_by_global_norm(float(optim_cfg.clip_norm)))
  parts.append(optax.multi_transform(update, labels))
  decay = float(optim_cfg.get('layer_decay', 1.0))
  if not 0 < decay <= 1:
    raise ValueError(f'config.optim.layer_decay={decay}; expected 0 < decay <= 1 (1 = off).')
  if decay < 1 and 'backbone' in active:
    parts.append(scale_by_layer_decay(decay))
  return optax.chain(*parts)


def _hal_backbone_scale(optim_cfg):
  return float(optim_cfg.get('hal_pass_backbone_lr_mult', 1.0))


def pass_groups(optim_cfg, update_scheme, hal_groups=('streams', 'cenet'), cls_groups=GROUPS):
  """Groups each pass may change: {'joint': groups} or {'hal': groups, 'cls': groups}.

  Pass 'hal' takes `hal_groups` (the hallucination streams and CENet, plus the backbone when
  the hallucination tasks should "co-supervise" it, `config.loss.hal_pass_trains_backbone`);
  'cls' takes `cls_groups` (every group, or all but the streams with
  `config.loss.cls_pass_trains_streams = False`); 'joint' takes every group. Groups in
  `optim_cfg.frozen_groups` are in none, and neither is a backbone with
  learning-rate multiplier 0 (and not in 'hal' when
  `optim_cfg.hal_pass_backbone_lr_mult` is 0), so the train step does not even differentiate
  through it there.
  """
  frozen = {'backbone'} if float(optim_cfg.backbone_lr_mult) <= 0 else set()
  # `optim.frozen_groups`: e.g. ('streams', 'cenet') in stage 2 of the large-scale protocol
  # (docs/method.md, 'Frozen backbone and cached features').
  named = tuple(optim_cfg.get('frozen_groups', ()))
  unknown = sorted(set(named) - set(GROUPS))
  if unknown:
    raise ValueError(f'config.optim.frozen_groups names {unknown}; groups are {GROUPS}.')
  frozen |= set(named)
  hal_frozen = frozen | ({'backbone'} if _hal_backbone_scale(optim_cfg) <= 0 else set())

  def keep(groups, frozen=frozen):
    return tuple(g for g in GROUPS if g in groups and g not in frozen)

  if update_scheme == 'joint':
    return {'joint': keep(GROUPS)}
  if update_scheme == 'alternating':
    return {'hal': keep(hal_groups, hal_frozen), 'cls': keep(cls_groups)}
  raise ValueError(f"config.loss.update_scheme={update_scheme!r}; expected 'joint' or "
                   "'alternating'.")


def make_optimizers(optim_cfg, update_scheme, schedule, labels, hal_groups=('streams', 'cenet'),
                    cls_groups=GROUPS):
  """Optimisers keyed by pass, {'joint': tx} or {'hal': tx1, 'cls': tx2} (docs/method.md §3.11), over
  the groups of `pass_groups`. Each pass keeps its own Adam moments. In pass 'hal' the backbone's
  learning rate is further scaled by `optim_cfg.hal_pass_backbone_lr_mult` (default 1): as Adam
  normalises each pass's step, this, not `loss.alpha`, sets how hard the hallucination targets
  pull on the backbone."""
  return {name: make_optimizer(optim_cfg, schedule, labels, groups,
                               _hal_backbone_scale(optim_cfg) if name == 'hal' else 1.0)
          for name, groups in pass_groups(optim_cfg, update_scheme, hal_groups,
                                          cls_groups).items()}
