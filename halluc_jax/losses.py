"""Losses, as pure functions of model outputs and a batch (docs/method.md §3.8-3.11, 3.13).

Batch keys: 'label' int32 [B] (or float32 [B, C] multi-hot / soft targets), 'valid' float32 [B]
(0 = padding), 'aux' {stream: [B, dim]} sketched PN'd targets, 'aux_mask' {stream: [B]} (0 = the
video has no such target) and, with standardised targets, 'aux_varies' {stream: [B, dim]} (0 = a
coordinate constant on the train split; docs/method.md, "Constant target coordinates"). With
config.data.standardize_targets the target store has already standardised 'aux' (z = (y - mean) / std per dimension, train-split statistics; docs/method.md,
"Target standardisation"), so these losses compare the heads' outputs with z: the MSE is then
an MSE in original units weighted by 1 / std_d^2 per dimension, and the uncertainty loss models
the standardised residuals (`losses_uncertainty`). The losses themselves never rescale. Model outputs: 'logits' [B, C], 'hallucinated' {stream: [B, dim]} and,
in training, 'cholesky' {structure: free entries of the precision factor}.

Loss config keys (config.loss): hallucination ('mse' | 'uncertainty'), kappa, alpha,
label_smoothing, multi_label, robust ('none' | 'barron'), barron_alpha, barron_scale,
constant_coords ('unit_precision' | 'model').
"""
import jax
import jax.numpy as jnp

from halluc_jax.losses_uncertainty import to_layout, uncertainty_terms

HALLUCINATION_LOSSES = ('mse', 'uncertainty')
ROBUST_LOSSES = ('none', 'barron')
# How the uncertainty loss scores target coordinates that never vary on the train split.
CONSTANT_COORDS = ('unit_precision', 'model')


def _weighted_mean(per_sample, weights):
  if weights is None:
    return jnp.mean(per_sample)
  weights = weights.astype(per_sample.dtype)
  return jnp.sum(per_sample * weights) / jnp.maximum(jnp.sum(weights), 1e-6)


def softmax_cross_entropy(logits, labels, label_smoothing=0.0, weights=None):
  """Mean (weighted by `weights`) softmax cross-entropy with label smoothing.

  Args:
    logits: [B, C].
    labels: int [B] class ids, or float [B, C] target distributions.
    label_smoothing: epsilon; targets become (1 - eps) * y + eps / C.
    weights: optional [B] per-sample weights (e.g. batch['valid']).

  Returns:
    Scalar loss.
  """
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  targets = (jax.nn.one_hot(labels, num_classes) if labels.ndim == logits.ndim - 1
             else labels.astype(jnp.float32))
  targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
  per_sample = -jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1)
  return _weighted_mean(per_sample, weights)


def sigmoid_binary_cross_entropy(logits, multi_hot, weights=None):
  """Sigmoid BCE summed over classes (scenic's multi-label convention), mean over samples."""
  logits = logits.astype(jnp.float32)
  y = multi_hot.astype(jnp.float32)
  per_class = -(y * jax.nn.log_sigmoid(logits) + (1.0 - y) * jax.nn.log_sigmoid(-logits))
  return _weighted_mean(jnp.sum(per_class, axis=-1), weights)


def barron_loss(x, alpha=1.0, scale=1.0):
  """Barron's general robust loss rho(x; alpha, c), element-wise (docs/method.md §3.13; NOT the paper's).

  alpha=2: L2 (x/c)^2 / 2; alpha=1: pseudo-Huber; alpha=0: Cauchy; alpha=-inf: Welsch.
  """
  z = (x / scale) ** 2
  if alpha == 2.0:
    return 0.5 * z
  if alpha == 0.0:
    return jnp.log1p(0.5 * z)
  if alpha == -jnp.inf:
    return 1.0 - jnp.exp(-0.5 * z)
  b = abs(alpha - 2.0)
  return (b / alpha) * ((z / b + 1.0) ** (alpha / 2.0) - 1.0)


def classification_loss(outputs, batch, loss_cfg):
  """Softmax CE (or sigmoid BCE when loss_cfg.multi_label) on outputs['logits'].

  Returns:
    (scalar loss, metrics {'cls_loss', and 'accuracy' for single-label int labels}).
  """
  logits, labels, valid = outputs['logits'], batch['label'], batch.get('valid')
  if loss_cfg.get('multi_label', False):
    if labels.shape != logits.shape:
      raise ValueError(f"multi_label needs batch['label'] multi-hot {logits.shape}, "
                       f'got {labels.shape}.')
    loss = sigmoid_binary_cross_entropy(logits, labels, valid)
    return loss, {'cls_loss': loss}
  loss = softmax_cross_entropy(logits, labels, loss_cfg.get('label_smoothing', 0.0), valid)
  metrics = {'cls_loss': loss}
  if labels.ndim == 1:
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    metrics['accuracy'] = _weighted_mean(correct, valid)
  return loss, metrics


def _stream_inputs(outputs, batch):
  """Residuals, per-sample masks and stream dims, checked against the batch."""
  hallucinated = outputs['hallucinated']
  missing = [n for n in hallucinated if n not in batch.get('aux', {})]
  if missing:
    raise KeyError(f"batch['aux'] lacks target stream(s) {missing} that the model hallucinates.")
  valid = batch.get('valid')
  residuals, masks = {}, {}
  for name, pred in hallucinated.items():
    target = batch['aux'][name]
    if target.shape != pred.shape:
      raise ValueError(f"batch['aux'][{name!r}] has shape {target.shape}; the stream predicts "
                       f'{pred.shape}.')
    mask = batch.get('aux_mask', {}).get(name, jnp.ones(pred.shape[:1]))
    if valid is not None:
      mask = mask * valid
    mask = mask.astype(jnp.float32)
    # where, not a product: a masked slot's target never reaches the loss, even if it is NaN.
    residuals[name] = jnp.where(mask[:, None] > 0,
                                pred.astype(jnp.float32) - target.astype(jnp.float32), 0.0)
    masks[name] = mask
  return residuals, masks


def hallucination_loss(outputs, batch, loss_cfg):
  """MSE (docs/method.md §3.8) or uncertainty (3.10) hallucination loss, masked by aux_mask * valid.

  MSE: (1/|H|) sum_i of stream i's squared error ||psi~_i - psi'_i||^2 averaged over the samples
  that have target i (optionally Barron's rho instead of the square). Uncertainty:
  r^T Omega r - kappa log|Omega| over the observed coordinates, divided by d' (docs/method.md §9.11), averaged
  over valid samples; coordinates with batch['aux_varies'] 0 (constant on the train split) enter
  as plain squared errors instead, unless loss_cfg.constant_coords == 'model'.

  Returns:
    (scalar loss, metrics): 'hal_loss', 'hal_mse/<stream>' (per-coordinate MSE of the stream over
    samples that have it) and, for the uncertainty loss, 'hal_unc/quadratic', 'hal_unc/log_det'
    and, with constant coordinates, 'hal_unc/constant_sq'.
  """
  if not outputs['hallucinated']:
    return jnp.zeros((), jnp.float32), {}
  kind, robust = loss_cfg.get('hallucination', 'mse'), loss_cfg.get('robust', 'none')
  if kind not in HALLUCINATION_LOSSES or robust not in ROBUST_LOSSES:
    raise ValueError(f'config.loss.hallucination={kind!r} / robust={robust!r}; expected one of '
                     f'{HALLUCINATION_LOSSES} / {ROBUST_LOSSES}.')
  residuals, masks = _stream_inputs(outputs, batch)
  metrics = {}
  for name, r in residuals.items():
    sse = jnp.sum(masks[name] * jnp.sum(r * r, axis=-1))
    metrics[f'hal_mse/{name}'] = sse / (jnp.maximum(jnp.sum(masks[name]), 1.0) * r.shape[-1])
  if kind == 'mse':
    stream_losses = []
    for name, r in residuals.items():
      penalty = (2.0 * barron_loss(r, loss_cfg.get('barron_alpha', 1.0),
                                         loss_cfg.get('barron_scale', 1.0))
                 if robust == 'barron' else r * r)  # 2 rho(alpha=2, c=1) = r^2
      per_sample = jnp.sum(penalty, axis=-1)
      present = jnp.maximum(jnp.sum(masks[name]), 1.0)
      stream_losses.append(jnp.sum(masks[name] * per_sample) / present)
    loss = jnp.mean(jnp.stack(stream_losses))
  else:
    if robust != 'none':
      raise ValueError("config.loss.robust='barron' applies to the MSE loss only; the uncertainty "
                       'loss is the paper\'s own "robust" loss.')
    if 'cholesky' not in outputs:
      raise KeyError("The uncertainty loss needs outputs['cholesky']; call the model with "
                     'train=True.')
    (structure, cholesky), = outputs['cholesky'].items()
    coord_masks = {n: jnp.broadcast_to(m[:, None], residuals[n].shape) for n, m in masks.items()}
    constant = loss_cfg.get('constant_coords', 'unit_precision')
    if constant not in CONSTANT_COORDS:
      raise ValueError(f'config.loss.constant_coords={constant!r}; expected one of '
                       f'{CONSTANT_COORDS}.')
    varies = batch.get('aux_varies') if constant == 'unit_precision' else None
    fixed_sq = 0.0
    if varies:
      # A coordinate constant on the train split has an unbounded maximum-likelihood precision:
      # CENet's precision there grows without limit and its residuals, weighted by it, swamp
      # the pass's gradient (docs/method.md, "Constant target coordinates"). It is scored by
      # its plain squared error instead, so the head keeps it at the train mean.
      v = {n: varies[n].astype(jnp.float32) if n in varies else jnp.ones_like(r)
           for n, r in residuals.items()}
      fixed_sq = sum(jnp.sum(coord_masks[n] * (1.0 - v[n]) * residuals[n] ** 2, axis=-1)
                     for n in residuals)
      coord_masks = {n: coord_masks[n] * v[n] for n in residuals}
      metrics['hal_unc/constant_sq'] = _weighted_mean(fixed_sq, batch.get('valid'))
    quadratic, log_det = uncertainty_terms(to_layout(residuals, structure), cholesky, structure,
                                           to_layout(coord_masks, structure))
    total_dim = sum(r.shape[-1] for r in residuals.values())
    per_sample = (quadratic + fixed_sq - loss_cfg.get('kappa', 1.0) * log_det) / total_dim
    valid = batch.get('valid')
    loss = _weighted_mean(per_sample, valid)
    metrics['hal_unc/quadratic'] = _weighted_mean(quadratic, valid)
    metrics['hal_unc/log_det'] = _weighted_mean(log_det, valid)
  metrics['hal_loss'] = loss
  return loss, metrics


def total_loss(outputs, batch, loss_cfg):
  """Joint objective alpha * hallucination + classification (docs/method.md §3.11), with merged metrics."""
  hal, hal_metrics = hallucination_loss(outputs, batch, loss_cfg)
  cls, cls_metrics = classification_loss(outputs, batch, loss_cfg)
  loss = loss_cfg.get('alpha', 1.0) * hal + cls
  return loss, {**hal_metrics, **cls_metrics, 'total_loss': loss}
