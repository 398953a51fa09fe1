"""Losses: uncertainty loss vs a dense numpy Omega, special cases, masking, CE/BCE, Barron."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from halluc_jax import losses
from halluc_jax.covariance import (STRUCTURES, factor_shapes, to_layout,
                                           uncertainty_loss, uncertainty_terms)

DIMS = {'a': 5, 'b': 3, 'c': 5}  # ragged on purpose: block structures pad 'b'


def _random_factor(rng, structure, dims, batch, scale=0.5):
  shapes = factor_shapes(structure, [dims[n] for n in sorted(dims)])
  return {k: (scale * rng.standard_normal((batch,) + s)).astype(np.float32)
          for k, s in shapes.items()}


def _dense_factor(cholesky, structure, dims, b):
  """Sample b's w as an explicit d' x d' matrix over the streams concatenated by sorted name."""
  names = sorted(dims)
  offsets = np.cumsum([0] + [dims[n] for n in names])
  total = offsets[-1]
  w = np.zeros((total, total))
  log_diag = np.asarray(cholesky['log_diag'][b], np.float64)
  if structure in ('diag', 'dense'):
    w[np.diag_indices(total)] = np.exp(log_diag)
    if structure == 'dense':
      w[np.tril_indices(total, -1)] = cholesky['off_diag'][b]
    return w
  num_streams = len(names)
  rows, cols = np.tril_indices(num_streams, -1)
  off = cholesky['off_diag'][b]
  for k in range(log_diag.shape[0]):  # block of sketch coordinate k across streams
    block = np.zeros((num_streams, num_streams))
    block[rows, cols] = off[k] if structure == 'grouped' else off
    block[np.diag_indices(num_streams)] = np.exp(log_diag[k])
    for i in range(num_streams):
      for j in range(num_streams):
        if k < dims[names[i]] and k < dims[names[j]]:
          w[offsets[i] + k, offsets[j] + k] = block[i, j]
  return w


def _numpy_loss(residual_by_stream, coord_mask_by_stream, cholesky, structure, dims, kappa):
  """Reference: Omega = w w^T over observed coordinates; quadratic form plus slogdet."""
  names = sorted(dims)
  out = []
  for b in range(next(iter(residual_by_stream.values())).shape[0]):
    r = np.concatenate([residual_by_stream[n][b] for n in names]).astype(np.float64)
    obs = np.concatenate([coord_mask_by_stream[n][b] for n in names]) > 0
    w = _dense_factor(cholesky, structure, dims, b)[np.ix_(obs, obs)]
    omega = w @ w.T
    sign, logdet = np.linalg.slogdet(omega)
    assert sign > 0
    out.append(r[obs] @ omega @ r[obs] - kappa * logdet)
  return np.array(out)


@pytest.mark.parametrize('structure', STRUCTURES)
@pytest.mark.parametrize('masked', [False, True])
def test_uncertainty_loss_matches_dense_numpy(structure, masked):
  rng = np.random.default_rng(hash((structure, masked)) % 2**32)
  batch, kappa = 4, 0.7
  residual = {n: rng.standard_normal((batch, d)).astype(np.float32) for n, d in DIMS.items()}
  mask = {n: np.ones((batch, d), np.float32) for n, d in DIMS.items()}
  if masked:  # sample 1 lacks stream 'b', sample 2 lacks 'a' and 'c'
    mask['b'][1] = 0
    mask['a'][2] = mask['c'][2] = 0
  cholesky = _random_factor(rng, structure, DIMS, batch)
  got = uncertainty_loss(to_layout({n: jnp.asarray(v) for n, v in residual.items()}, structure),
                         {k: jnp.asarray(v) for k, v in cholesky.items()}, structure, kappa,
                         to_layout({n: jnp.asarray(v) for n, v in mask.items()}, structure))
  want = _numpy_loss(residual, mask, cholesky, structure, DIMS, kappa)
  np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-4)


def test_diag_is_twice_gaussian_nll_up_to_constant():
  rng = np.random.default_rng(0)
  residual = rng.standard_normal((3, 7)).astype(np.float32)
  log_diag = rng.uniform(-2, 2, (3, 7)).astype(np.float32)
  got = uncertainty_loss(jnp.asarray(residual), {'log_diag': jnp.asarray(log_diag)}, 'diag', 1.0)
  sigma = np.exp(-log_diag.astype(np.float64))  # precision exp(2 l) = 1 / sigma^2
  nll = -stats.norm.logpdf(residual, scale=sigma).sum(axis=1)
  np.testing.assert_allclose(np.asarray(got), 2 * nll - 7 * np.log(2 * np.pi), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('structure', STRUCTURES)
def test_identity_factor_is_sum_of_squared_errors(structure):
  rng = np.random.default_rng(1)
  residual = {n: jnp.asarray(rng.standard_normal((2, d)), jnp.float32) for n, d in DIMS.items()}
  shapes = factor_shapes(structure, [DIMS[n] for n in sorted(DIMS)])
  identity = {k: jnp.zeros((2,) + s) for k, s in shapes.items()}
  got = uncertainty_loss(to_layout(residual, structure), identity, structure, kappa=3.0)
  want = sum(np.sum(np.asarray(r) ** 2, axis=1) for r in residual.values())
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


@pytest.mark.parametrize('structure', STRUCTURES)
def test_gradients_finite_at_extreme_inputs(structure):
  shapes = factor_shapes(structure, [DIMS[n] for n in sorted(DIMS)])
  residual = to_layout({n: jnp.full((2, d), 1e3) for n, d in DIMS.items()}, structure)
  for log_diag_value in (-7.0, 7.0):  # CENet's clamp range
    cholesky = {'log_diag': jnp.full((2,) + shapes['log_diag'], log_diag_value)}
    if 'off_diag' in shapes:
      cholesky['off_diag'] = jnp.full((2,) + shapes['off_diag'], 1e2)
    grads = jax.grad(lambda r, c: jnp.sum(uncertainty_loss(r, c, structure)), argnums=(0, 1))(
        residual, cholesky)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))


def _outputs_and_batch(rng, dims, batch=4):
  draw = lambda: {n: jnp.asarray(rng.standard_normal((batch, d)), jnp.float32)
                  for n, d in dims.items()}
  hallucinated = draw()
  return {
      'logits': jnp.asarray(rng.standard_normal((batch, 6)), jnp.float32),
      'hallucinated': hallucinated,
  }, {
      'label': jnp.arange(batch) % 6,
      'valid': jnp.ones(batch),
      'aux': draw(),
      'aux_mask': {n: jnp.ones(batch) for n in dims},
  }


def _loss_cfg(**kw):
  cfg = dict(hallucination='mse', kappa=1.0, alpha=1.0, label_smoothing=0.0, multi_label=False,
             robust='none', barron_alpha=1.0, barron_scale=0.5)
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


def test_mse_hallucination_loss_value_and_metrics():
  rng = np.random.default_rng(2)
  outputs, batch = _outputs_and_batch(rng, DIMS)
  batch['aux_mask']['b'] = jnp.array([1.0, 0.0, 1.0, 1.0])
  batch['valid'] = jnp.array([1.0, 1.0, 1.0, 0.0])
  loss, metrics = losses.hallucination_loss(outputs, batch, _loss_cfg())
  per_stream = []
  for n in DIMS:
    m = np.asarray(batch['aux_mask'][n] * batch['valid'])
    sse = ((np.asarray(outputs['hallucinated'][n]) - np.asarray(batch['aux'][n])) ** 2).sum(1)
    per_stream.append((m * sse).sum() / m.sum())
    np.testing.assert_allclose(metrics[f'hal_mse/{n}'], (m * sse).sum() / m.sum() / DIMS[n],
                               rtol=1e-5)
  np.testing.assert_allclose(loss, np.mean(per_stream), rtol=1e-5)


@pytest.mark.parametrize('kind,structure', [('mse', None), ('uncertainty', 'diag'),
                                            ('uncertainty', 'grouped'), ('uncertainty', 'dense')])
def test_masked_stream_contributes_nothing(kind, structure):
  rng = np.random.default_rng(3)
  outputs, batch = _outputs_and_batch(rng, DIMS)
  if structure:
    outputs['cholesky'] = {structure: {k: jnp.asarray(v) for k, v in _random_factor(
        rng, structure, DIMS, 4).items()}}
  batch['aux_mask']['b'] = jnp.array([1.0, 0.0, 0.0, 1.0])
  cfg = _loss_cfg(hallucination=kind)

  def loss_fn(hallucinated, aux):
    return losses.hallucination_loss({**outputs, 'hallucinated': hallucinated},
                                     {**batch, 'aux': aux}, cfg)[0]

  base, grads = jax.value_and_grad(loss_fn)(outputs['hallucinated'], batch['aux'])
  garbage = dict(batch['aux'], b=batch['aux']['b'].at[1:3].set(jnp.nan))
  moved = dict(outputs['hallucinated'], b=outputs['hallucinated']['b'].at[1:3].add(1e3))
  changed, grads2 = jax.value_and_grad(loss_fn)(moved, garbage)
  np.testing.assert_allclose(changed, base, rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(grads['b'][1:3]), 0.0)
  assert np.isfinite(np.asarray(grads2['b'])).all()


def test_uncertainty_mask_equals_dropping_the_stream():
  """Masking stream 'b' for the whole batch == the loss without 'b' (sub-blocks of w)."""
  rng = np.random.default_rng(4)
  dims = {'a': 4, 'b': 4, 'c': 4}
  outputs, batch = _outputs_and_batch(rng, dims)
  full = _random_factor(rng, 'grouped', dims, 4)
  batch['aux_mask']['b'] = jnp.zeros(4)
  # Sub-factor over streams a, c: rows/cols 0 and 2 of each 3x3 block, whose strict lower
  # entries are (1,0), (2,0), (2,1) in tril order.
  reduced = {'log_diag': full['log_diag'][..., [0, 2]], 'off_diag': full['off_diag'][..., [1]]}
  cfg = _loss_cfg(hallucination='uncertainty')
  with_mask, _ = losses.hallucination_loss(
      {**outputs, 'cholesky': {'grouped': {k: jnp.asarray(v) for k, v in full.items()}}},
      batch, cfg)
  keep = ('a', 'c')
  without, _ = losses.hallucination_loss(
      {**outputs, 'hallucinated': {n: outputs['hallucinated'][n] for n in keep},
       'cholesky': {'grouped': {k: jnp.asarray(v) for k, v in reduced.items()}}},
      {**batch, 'aux': {n: batch['aux'][n] for n in keep}}, cfg)
  # hallucination_loss divides by d'; the full model's d' counts b too.
  np.testing.assert_allclose(with_mask * 12, without * 8, rtol=1e-5)


def test_uncertainty_loss_metrics_and_normalisation():
  rng = np.random.default_rng(5)
  outputs, batch = _outputs_and_batch(rng, DIMS)
  chol = _random_factor(rng, 'diag', DIMS, 4)
  outputs['cholesky'] = {'diag': {'log_diag': jnp.asarray(chol['log_diag'])}}
  loss, metrics = losses.hallucination_loss(outputs, batch, _loss_cfg(hallucination='uncertainty',
                                                                      kappa=2.0))
  np.testing.assert_allclose(loss, (metrics['hal_unc/quadratic'] - 2.0 * metrics['hal_unc/log_det'])
                             / sum(DIMS.values()), rtol=1e-5)
  np.testing.assert_allclose(metrics['hal_unc/log_det'], 2 * chol['log_diag'].sum(1).mean(),
                             rtol=1e-5)


def test_uncertainty_loss_needs_cholesky_and_rejects_barron():
  outputs, batch = _outputs_and_batch(np.random.default_rng(6), DIMS)
  with pytest.raises(KeyError, match='train=True'):
    losses.hallucination_loss(outputs, batch, _loss_cfg(hallucination='uncertainty'))
  with pytest.raises(ValueError, match='MSE loss only'):
    losses.hallucination_loss(outputs, batch,
                              _loss_cfg(hallucination='uncertainty', robust='barron'))
  with pytest.raises(KeyError, match="'b'"):
    losses.hallucination_loss(outputs, {**batch, 'aux': {'a': batch['aux']['a']}}, _loss_cfg())


def test_no_streams_gives_zero_hallucination_loss():
  outputs, batch = _outputs_and_batch(np.random.default_rng(7), {})
  loss, metrics = losses.hallucination_loss(outputs, batch, _loss_cfg())
  assert float(loss) == 0.0 and metrics == {}


def test_softmax_cross_entropy_with_smoothing_and_weights():
  rng = np.random.default_rng(8)
  logits = rng.standard_normal((5, 4)).astype(np.float32)
  labels = np.array([0, 3, 1, 1, 2])
  weights = np.array([1, 1, 0, 1, 1], np.float32)
  eps = 0.2
  targets = np.full((5, 4), eps / 4)
  targets[np.arange(5), labels] += 1 - eps
  log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  want = (-(targets * log_p).sum(1) * weights).sum() / weights.sum()
  got = losses.softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), eps,
                                     jnp.asarray(weights))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sigmoid_bce_and_classification_metrics():
  rng = np.random.default_rng(9)
  logits = rng.standard_normal((3, 4)).astype(np.float32)
  y = (rng.random((3, 4)) > 0.5).astype(np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  want = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(1).mean()
  got = losses.sigmoid_binary_cross_entropy(jnp.asarray(logits), jnp.asarray(y))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  loss, metrics = losses.classification_loss({'logits': jnp.asarray(logits)},
                                             {'label': jnp.asarray(y)}, _loss_cfg(multi_label=True))
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  assert 'accuracy' not in metrics
  labels = jnp.asarray(np.argmax(logits, 1))
  labels = labels.at[0].set((labels[0] + 1) % 4)
  _, metrics = losses.classification_loss({'logits': jnp.asarray(logits)}, {'label': labels},
                                          _loss_cfg())
  np.testing.assert_allclose(metrics['accuracy'], 2 / 3, rtol=1e-6)


def test_total_loss_is_alpha_weighted_sum():
  outputs, batch = _outputs_and_batch(np.random.default_rng(10), DIMS)
  cfg = _loss_cfg(alpha=0.3)
  total, metrics = losses.total_loss(outputs, batch, cfg)
  hal, _ = losses.hallucination_loss(outputs, batch, cfg)
  cls, _ = losses.classification_loss(outputs, batch, cfg)
  np.testing.assert_allclose(total, 0.3 * hal + cls, rtol=1e-6)
  assert {'hal_loss', 'cls_loss', 'total_loss', 'hal_mse/a'} <= set(metrics)


def test_barron_special_cases_and_mse_ablation():
  x = jnp.linspace(-3, 3, 13)
  np.testing.assert_allclose(losses.barron_loss(x, 2.0, 1.5), 0.5 * (x / 1.5) ** 2, rtol=1e-6)
  np.testing.assert_allclose(losses.barron_loss(x, 1.0, 1.0), np.sqrt(x ** 2 + 1) - 1, rtol=1e-5)
  np.testing.assert_allclose(losses.barron_loss(x, 0.0, 1.0), np.log1p(0.5 * x ** 2), rtol=1e-6)
  # The general formula approaches the L2 limit continuously.
  np.testing.assert_allclose(losses.barron_loss(x, 1.999, 1.0), 0.5 * x ** 2, rtol=1e-2, atol=1e-4)
  outputs, batch = _outputs_and_batch(np.random.default_rng(11), DIMS)
  mse, _ = losses.hallucination_loss(outputs, batch, _loss_cfg())
  robust_l2, _ = losses.hallucination_loss(outputs, batch, _loss_cfg(
      robust='barron', barron_alpha=2.0, barron_scale=1.0))
  robust_cauchy, _ = losses.hallucination_loss(outputs, batch, _loss_cfg(
      robust='barron', barron_alpha=0.0, barron_scale=1.0))  # 2 log(1 + r^2 / 2) < r^2
  np.testing.assert_allclose(robust_l2, mse, rtol=1e-5)
  assert float(robust_cauchy) < float(mse)


def _constant_coords_case(rng, structure):
  outputs, batch = _outputs_and_batch(rng, DIMS)
  varies = {n: (rng.random(d) > 0.4).astype(np.float32) for n, d in DIMS.items()}
  batch['aux_varies'] = {n: jnp.broadcast_to(jnp.asarray(v), (4, len(v))) for n, v in varies.items()}
  batch['aux_mask']['b'] = jnp.array([1.0, 0.0, 1.0, 1.0])
  chol = _random_factor(rng, structure, DIMS, 4)
  outputs['cholesky'] = {structure: {k: jnp.asarray(v) for k, v in chol.items()}}
  return outputs, batch, varies, chol


@pytest.mark.parametrize('structure', STRUCTURES)
def test_constant_coordinates_are_plain_squared_errors(structure):
  """aux_varies 0: the coordinate leaves the Gaussian model and adds r^2 (numpy reference)."""
  rng = np.random.default_rng(11)
  outputs, batch, varies, chol = _constant_coords_case(rng, structure)
  residual = {n: np.asarray(outputs['hallucinated'][n] - batch['aux'][n]) for n in DIMS}
  present = {n: np.asarray(batch['aux_mask'][n])[:, None] * np.ones((1, d)) for n, d in DIMS.items()}
  modelled = _numpy_loss(residual, {n: present[n] * varies[n] for n in DIMS}, chol, structure,
                         DIMS, kappa=1.5)
  squared = sum((present[n] * (1 - varies[n]) * residual[n] ** 2).sum(1) for n in DIMS)
  cfg = _loss_cfg(hallucination='uncertainty', kappa=1.5)
  loss, metrics = losses.hallucination_loss(outputs, batch, cfg)
  np.testing.assert_allclose(loss, np.mean(modelled + squared) / sum(DIMS.values()), rtol=1e-4)
  np.testing.assert_allclose(metrics['hal_unc/constant_sq'], squared.mean(), rtol=1e-5)
  # 'model': the paper's literal loss, every coordinate under CENet's precision.
  literal, literal_metrics = losses.hallucination_loss(outputs, batch,
                                                       _loss_cfg(hallucination='uncertainty',
                                                                 kappa=1.5,
                                                                 constant_coords='model'))
  np.testing.assert_allclose(literal, np.mean(_numpy_loss(residual, present, chol, structure,
                                                          DIMS, 1.5)) / sum(DIMS.values()),
                             rtol=1e-4)
  assert 'hal_unc/constant_sq' not in literal_metrics


def test_constant_coordinates_give_cenet_no_gradient():
  """CENet's precision of a constant coordinate gets no gradient, so it cannot grow without
  bound, and its residual's gradient is 2 r / d' whatever CENet predicts there."""
  rng = np.random.default_rng(12)
  outputs, batch, varies, chol = _constant_coords_case(rng, 'diag')
  cfg = _loss_cfg(hallucination='uncertainty')

  def loss_of(log_diag, hallucinated):
    out = {**outputs, 'hallucinated': hallucinated, 'cholesky': {'diag': {'log_diag': log_diag}}}
    return losses.hallucination_loss(out, batch, cfg)[0]

  g_chol, g_pred = jax.grad(loss_of, argnums=(0, 1))(jnp.asarray(chol['log_diag']),
                                                    outputs['hallucinated'])
  constant = np.concatenate([1 - varies[n] for n in sorted(DIMS)]) > 0
  assert constant.any() and (~constant).any()
  np.testing.assert_array_equal(np.asarray(g_chol)[:, constant], 0.0)
  assert np.abs(np.asarray(g_chol)[:, ~constant]).max() > 0
  for n in DIMS:
    r = np.asarray(outputs['hallucinated'][n] - batch['aux'][n])
    expected = 2 * r / (4 * sum(DIMS.values())) * np.asarray(batch['aux_mask'][n])[:, None]
    c = varies[n] == 0
    np.testing.assert_allclose(np.asarray(g_pred[n])[:, c], expected[:, c], rtol=1e-5, atol=1e-8)


def test_constant_coords_setting_is_checked():
  rng = np.random.default_rng(13)
  outputs, batch, _, _ = _constant_coords_case(rng, 'diag')
  with pytest.raises(ValueError, match='constant_coords'):
    losses.hallucination_loss(outputs, batch, _loss_cfg(hallucination='uncertainty',
                                                        constant_coords='drop'))


@pytest.mark.parametrize('kind,hallucination', [('total', 'mse'), ('hal', 'uncertainty'),
                                                ('cls', 'mse'), ('total', 'uncertainty')])
def test_sums_of_parts_over_the_whole_counts_give_the_whole_batch(kind, hallucination):
  """The accumulation contract: split a batch in two (one part with no valid clip, one stream
  absent from a part), add the parts' sums, divide by the whole batch's counts once: the whole
  batch's loss and metrics, for every term's own count."""
  rng = np.random.default_rng(14)
  outputs, batch = _outputs_and_batch(rng, DIMS, batch=6)
  outputs['cholesky'] = {'grouped': {k: jnp.asarray(v) for k, v in _random_factor(
      rng, 'grouped', DIMS, 6).items()}}
  batch['valid'] = jnp.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
  batch['aux_mask']['b'] = jnp.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
  objective = losses.make(_loss_cfg(hallucination=hallucination, alpha=0.4, label_smoothing=0.1))
  parts = [np.array([0, 1, 4]), np.array([2, 3, 5])]  # the second part has no valid clip
  take = lambda tree, rows: jax.tree.map(lambda x: x[rows], tree)  # pylint: disable=unnecessary-lambda-assignment
  part_sums = [objective.sums(kind, take(outputs, rows), take(batch, rows)) for rows in parts]
  summed = jax.tree.map(lambda a, b: a + b, *part_sums)
  loss, metrics = objective.reduce(kind, summed, losses.counts(batch))
  want_loss, want_metrics = objective.loss(kind, outputs, batch)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
  assert set(metrics) == set(want_metrics)
  for k, v in want_metrics.items():
    np.testing.assert_allclose(metrics[k], v, rtol=1e-5, atol=1e-7, err_msg=k)
  # Dividing each part by its own counts and averaging (a plain mean of micro-batch losses)
  # would not: the part with no valid clip would weigh like the other.
  if kind != 'hal' or hallucination != 'uncertainty':
    naive = np.mean([objective.loss(kind, take(outputs, r), take(batch, r))[0] for r in parts])
    assert abs(float(naive) - float(want_loss)) > 1e-3


def test_loss_settings_are_checked_when_made():
  """`make` (called once, at set-up) rejects bad settings before anything is traced."""
  for bad in (dict(hallucination='l1'), dict(robust='huber'), dict(constant_coords='drop'),
              dict(hallucination='uncertainty', robust='barron')):
    with pytest.raises(ValueError, match='config.loss'):
      losses.make(_loss_cfg(**bad))
  objective = losses.make(ml_collections.ConfigDict({'alpha': 2, 'update_scheme': 'joint'}))
  assert objective.alpha == 2.0 and isinstance(objective.alpha, float)
  assert objective.hallucination == 'mse'  # unset keys take the defaults
  assert objective.total(3.0, 1.0) == 7.0
