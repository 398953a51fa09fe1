"""Losses, as pure functions of model outputs and a batch (docs/method.md §3.8-3.11, 3.13).

Batch keys: 'label' int32 [B] (or float32 [B, C] multi-hot / soft targets), 'valid' float32 [B]
(0 = padding), 'aux' {stream: [B, dim]} sketched PN'd targets, 'aux_mask' {stream: [B]} (0 = the
video has no such target) and, with standardised targets, 'aux_varies' {stream: [B, dim]} (0 = a
coordinate constant on the train split; docs/method.md, "Constant target coordinates"). With
config.data.standardize_targets the target store has already standardised 'aux' (z = (y - mean) / std per dimension, train-split statistics; docs/method.md,
"Target standardisation"), so these losses compare the heads' outputs with z: the MSE is then
an MSE in original units weighted by 1 / std_d^2 per dimension, and the uncertainty loss models
the standardised residuals (`covariance`). The losses themselves never rescale. Model outputs: 'logits' [B, C], 'hallucinated' {stream: [B, dim]} and,
in training, 'cholesky' {structure: free entries of the precision factor}.

One contract for every term: a loss is a sum over the samples that count divided by their
count. `Objective.sums(kind, outputs, batch)` gives each term's sum, `counts(batch)` the counts
(pure functions of the batch's masks: 'valid', and per stream aux_mask * valid), and
`Objective.reduce(kind, sums, counts)` divides once and combines the terms (alpha is applied
there, and only there). `reduce` is linear in the sums for fixed counts, so gradient
accumulation sums the micro-batches' sums against the whole batch's counts and gets the
large-batch loss, metrics and gradient (`train_step`). `make(config.loss)` validates the loss
settings once, at set-up, into an `Objective`; `classification_loss`, `hallucination_loss` and
`total_loss` are the one-batch means, through the same code.

Loss config keys (config.loss): hallucination ('mse' | 'uncertainty'), kappa, alpha,
label_smoothing, multi_label, robust ('none' | 'barron'), barron_alpha, barron_scale,
constant_coords ('unit_precision' | 'model'); the update-scheme keys are read by
`optim` / `models.hallucinator`, not here.
"""
import dataclasses

import jax
import jax.numpy as jnp

from halluc_jax.covariance import to_layout, uncertainty_terms

HALLUCINATION_LOSSES = ('mse', 'uncertainty')
ROBUST_LOSSES = ('none', 'barron')
# How the uncertainty loss scores target coordinates that never vary on the train split.
CONSTANT_COORDS = ('unit_precision', 'model')
KINDS = ('total', 'hal', 'cls')  # the joint objective, and the alternating scheme's two passes


def _divide(total, count):
  """total / count, 0 where nothing counts (and no NaN in the gradient there)."""
  safe = jnp.where(count > 0, count, 1.0)
  return jnp.where(count > 0, total / safe, 0.0)


def _weighted_mean(per_sample, weights):
  if weights is None:
    return jnp.mean(per_sample)
  weights = weights.astype(per_sample.dtype)
  return _divide(jnp.sum(per_sample * weights), jnp.sum(weights))


def _cross_entropy_per_sample(logits, labels, label_smoothing):
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  targets = (jax.nn.one_hot(labels, num_classes) if labels.ndim == logits.ndim - 1
             else labels.astype(jnp.float32))
  targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
  return -jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1)


def _bce_per_sample(logits, multi_hot):
  logits = logits.astype(jnp.float32)
  y = multi_hot.astype(jnp.float32)
  per_class = -(y * jax.nn.log_sigmoid(logits) + (1.0 - y) * jax.nn.log_sigmoid(-logits))
  return jnp.sum(per_class, axis=-1)


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
  return _weighted_mean(_cross_entropy_per_sample(logits, labels, label_smoothing), weights)


def sigmoid_binary_cross_entropy(logits, multi_hot, weights=None):
  """Sigmoid BCE summed over classes (scenic's multi-label convention), mean over samples."""
  return _weighted_mean(_bce_per_sample(logits, multi_hot), weights)


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


def _valid(batch):
  valid = batch.get('valid')
  if valid is None:
    valid = jnp.ones(batch['label'].shape[:1], jnp.float32)
  return valid.astype(jnp.float32)


def _stream_masks(batch):
  """{stream: float32 [B]}: the samples that have the stream's target, aux_mask * valid."""
  valid, masks = _valid(batch), batch.get('aux_mask', {})
  return {n: masks[n].astype(jnp.float32) * valid if n in masks else valid
          for n in batch.get('aux', {})}


def counts(batch):
  """The count of every loss term of `batch`, from its masks only (no model output needed):
  {'valid': number of valid clips, 'stream/<name>': valid clips that have that target}."""
  return {'valid': jnp.sum(_valid(batch)),
          **{f'stream/{n}': jnp.sum(m) for n, m in _stream_masks(batch).items()}}


def _stream_residuals(outputs, batch):
  """{stream: [B, dim] residual}, 0 where the sample does not count, checked against the batch."""
  hallucinated = outputs['hallucinated']
  missing = [n for n in hallucinated if n not in batch.get('aux', {})]
  if missing:
    raise KeyError(f"batch['aux'] lacks target stream(s) {missing} that the model hallucinates.")
  masks = _stream_masks(batch)
  residuals = {}
  for name, pred in hallucinated.items():
    target = batch['aux'][name]
    if target.shape != pred.shape:
      raise ValueError(f"batch['aux'][{name!r}] has shape {target.shape}; the stream predicts "
                       f'{pred.shape}.')
    # where, not a product: a masked slot's target never reaches the loss, even if it is NaN.
    residuals[name] = jnp.where(masks[name][:, None] > 0,
                                pred.astype(jnp.float32) - target.astype(jnp.float32), 0.0)
  return residuals, masks


@dataclasses.dataclass(frozen=True)
class Objective:
  """The training losses with their settings (`config.loss`), validated once.

  Attributes: see the loss config keys of the module docstring.
  """
  hallucination: str = 'mse'
  kappa: float = 1.0
  alpha: float = 1.0
  label_smoothing: float = 0.0
  multi_label: bool = False
  robust: str = 'none'
  barron_alpha: float = 1.0
  barron_scale: float = 1.0
  constant_coords: str = 'unit_precision'

  def __post_init__(self):
    if self.hallucination not in HALLUCINATION_LOSSES or self.robust not in ROBUST_LOSSES:
      raise ValueError(f'config.loss.hallucination={self.hallucination!r} / robust='
                       f'{self.robust!r}; expected one of {HALLUCINATION_LOSSES} / '
                       f'{ROBUST_LOSSES}.')
    if self.hallucination == 'uncertainty' and self.robust != 'none':
      raise ValueError("config.loss.robust='barron' applies to the MSE loss only; the "
                       'uncertainty loss is the paper\'s own "robust" loss.')
    if self.constant_coords not in CONSTANT_COORDS:
      raise ValueError(f'config.loss.constant_coords={self.constant_coords!r}; expected one of '
                       f'{CONSTANT_COORDS}.')

  # ---- sums: one scalar per term, summed over the samples that count. ----
  def sums(self, kind, outputs, batch):
    """{term: sum over the batch} of the terms of `kind` ('total', 'hal' or 'cls').

    Terms: 'cls_loss', 'accuracy' (single-label integer labels); per stream 'hal/<name>' (the
    MSE loss's summed penalty) and 'hal_mse/<name>' (squared error per coordinate); for the
    uncertainty loss 'hal_unc' (its per-clip value), 'hal_unc/quadratic', 'hal_unc/log_det'
    and, with constant coordinates, 'hal_unc/constant_sq'.
    """
    if kind not in KINDS:
      raise ValueError(f'loss kind {kind!r}; expected one of {KINDS}.')
    out = {}
    if kind in ('total', 'hal'):
      out.update(self._hallucination_sums(outputs, batch))
    if kind in ('total', 'cls'):
      out.update(self._classification_sums(outputs, batch))
    return out

  def _classification_sums(self, outputs, batch):
    logits, labels, valid = outputs['logits'], batch['label'], _valid(batch)
    if self.multi_label:
      if labels.shape != logits.shape:
        raise ValueError(f"multi_label needs batch['label'] multi-hot {logits.shape}, "
                         f'got {labels.shape}.')
      return {'cls_loss': jnp.sum(valid * _bce_per_sample(logits, labels))}
    out = {'cls_loss': jnp.sum(valid * _cross_entropy_per_sample(logits, labels,
                                                                 self.label_smoothing))}
    if labels.ndim == 1:
      out['accuracy'] = jnp.sum(valid * (jnp.argmax(logits, axis=-1) == labels))
    return out

  def _hallucination_sums(self, outputs, batch):
    if not outputs['hallucinated']:
      return {}
    residuals, masks = _stream_residuals(outputs, batch)
    out = {}
    for name, r in residuals.items():
      out[f'hal_mse/{name}'] = jnp.sum(masks[name] * jnp.sum(r * r, axis=-1)) / r.shape[-1]
    if self.hallucination == 'mse':
      for name, r in residuals.items():
        penalty = (2.0 * barron_loss(r, self.barron_alpha, self.barron_scale)
                   if self.robust == 'barron' else r * r)  # 2 rho(alpha=2, c=1) = r^2
        out[f'hal/{name}'] = jnp.sum(masks[name] * jnp.sum(penalty, axis=-1))
      return out
    if 'cholesky' not in outputs:
      raise KeyError("The uncertainty loss needs outputs['cholesky']; call the model with "
                     'train=True.')
    (structure, cholesky), = outputs['cholesky'].items()
    coord_masks = {n: jnp.broadcast_to(masks[n][:, None], r.shape) for n, r in residuals.items()}
    varies = batch.get('aux_varies') if self.constant_coords == 'unit_precision' else None
    fixed_sq = 0.0
    valid = _valid(batch)
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
      out['hal_unc/constant_sq'] = jnp.sum(valid * fixed_sq)
    quadratic, log_det = uncertainty_terms(to_layout(residuals, structure), cholesky, structure,
                                           to_layout(coord_masks, structure))
    total_dim = sum(r.shape[-1] for r in residuals.values())
    out['hal_unc'] = jnp.sum(valid * ((quadratic + fixed_sq - self.kappa * log_det) / total_dim))
    out['hal_unc/quadratic'] = jnp.sum(valid * quadratic)
    out['hal_unc/log_det'] = jnp.sum(valid * log_det)
    return out

  # ---- reduce: divide once, combine the terms. ----
  def reduce(self, kind, sums, term_counts):
    """(loss, metrics) of `kind` from `sums` and the `counts` they are means over.

    Linear in `sums` for fixed `term_counts`: summing micro-batches' `sums` against the whole
    batch's counts gives the whole batch's loss and metrics.
    """
    means = {k: _divide(v, term_counts[f'stream/{k.split("/", 1)[1]}']
                        if k.startswith(('hal/', 'hal_mse/')) else term_counts['valid'])
             for k, v in sums.items()}
    metrics = {k: v for k, v in means.items() if not k.startswith('hal/') and k != 'hal_unc'}
    loss = jnp.zeros((), jnp.float32)
    if kind in ('total', 'hal'):
      streams = [v for k, v in means.items() if k.startswith('hal/')]
      hal = (jnp.mean(jnp.stack(streams)) if streams  # MSE: mean over streams of their means
             else means.get('hal_unc', jnp.zeros((), jnp.float32)))
      if streams or 'hal_unc' in means:
        metrics['hal_loss'] = hal
      loss = self.total(hal, 0.0) if kind == 'total' else hal
    if kind in ('total', 'cls'):
      loss = loss + means['cls_loss']
    if kind == 'total':
      metrics['total_loss'] = loss
    return loss, metrics

  def total(self, hal_loss, cls_loss):
    """The joint objective alpha * L_hal + L_cls (docs/method.md §3.11)."""
    return self.alpha * hal_loss + cls_loss

  def loss(self, kind, outputs, batch):
    """(loss, metrics) of one batch: `reduce(sums(...), counts(batch))`."""
    return self.reduce(kind, self.sums(kind, outputs, batch), counts(batch))


def make(loss_cfg):
  """The `Objective` of `config.loss` (its loss keys; the update-scheme keys are ignored)."""
  fields = {f.name: f.default for f in dataclasses.fields(Objective)}
  values = {k: loss_cfg.get(k, v) for k, v in fields.items()}
  return Objective(**{k: type(fields[k])(v) for k, v in values.items()})


def classification_loss(outputs, batch, loss_cfg):
  """Softmax CE (or sigmoid BCE when loss_cfg.multi_label) on outputs['logits'].

  Returns:
    (scalar loss, metrics {'cls_loss', and 'accuracy' for single-label int labels}).
  """
  return make(loss_cfg).loss('cls', outputs, batch)


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
  return make(loss_cfg).loss('hal', outputs, batch)


def total_loss(outputs, batch, loss_cfg):
  """Joint objective alpha * hallucination + classification (docs/method.md §3.11), with merged metrics."""
  return make(loss_cfg).loss('total', outputs, batch)
