"""Ground-truth target probes: closed-form ridge probe and the constant-mean baseline."""
import numpy as np

from halluc_jax.evaluation import metrics
from halluc_jax.targets import probe_targets


def _blobs(rng, n, num_classes, dim, separation):
  labels = rng.integers(0, num_classes, n)
  centres = separation * np.eye(num_classes, dim)
  return centres[labels] + rng.standard_normal((n, dim)), labels


def test_ridge_probe_separates_blobs_and_is_at_chance_on_noise():
  rng = np.random.default_rng(0)
  x, y = _blobs(rng, 600, 4, 8, separation=6.0)
  acc = probe_targets.ridge_probe_accuracy(x[:400], y[:400], x[400:], y[400:], 4, ridge=1e-3)
  assert acc > 0.95
  noise = rng.standard_normal((600, 8))
  acc = probe_targets.ridge_probe_accuracy(noise[:400], y[:400], noise[400:], y[400:], 4)
  assert acc < 0.4  # chance 0.25; 200 eval points


def test_ridge_probe_matches_direct_least_squares_at_tiny_ridge():
  rng = np.random.default_rng(1)
  x, y = _blobs(rng, 300, 3, 5, separation=1.0)
  acc = probe_targets.ridge_probe_accuracy(x[:200], y[:200], x[200:], y[200:], 3, ridge=1e-9)
  # Direct: least squares with a bias column, features standardised by train statistics.
  mu, sd = x[:200].mean(0), x[:200].std(0)
  design = np.c_[(x[:200] - mu) / sd, np.ones(200)]
  w, *_ = np.linalg.lstsq(design, np.eye(3)[y[:200]], rcond=None)
  direct = np.mean(np.argmax(np.c_[(x[200:] - mu) / sd, np.ones(100)] @ w, 1) == y[200:])
  assert acc == direct


def test_mean_predictor_scores():
  rng = np.random.default_rng(2)
  t = 3.0 + rng.standard_normal((50, 6))
  cosine, r2 = probe_targets.mean_predictor_scores(t, t)
  assert abs(r2) < 1e-12  # the eval mean itself scores R^2 = 0
  mean = t.mean(0)
  direct = np.mean(t @ mean / (np.linalg.norm(t, axis=1) * np.linalg.norm(mean)))
  np.testing.assert_allclose(cosine, direct, rtol=1e-12)
  _, r2_shifted = probe_targets.mean_predictor_scores(t + 1.0, t)
  assert r2_shifted < -0.5  # a wrong constant is worse than the mean


def test_probe_sets_streams_groups_all():
  names = ['odf_mser', 'odf_shape', 'off_hofmbh', 'sdf_motion']
  groups = {'odf_mser': 'odf', 'odf_shape': 'odf', 'off_hofmbh': 'off', 'sdf_motion': 'sdf'}
  sets = probe_targets.probe_sets(names, groups)
  assert sets == [('odf_mser', ['odf_mser']), ('odf_shape', ['odf_shape']),
                  ('off_hofmbh', ['off_hofmbh']), ('sdf_motion', ['sdf_motion']),
                  ('group:odf', ['odf_mser', 'odf_shape']), ('all', names)]


def test_class_mean_r2_sees_class_signal_and_its_absence():
  """Targets that are class means plus noise: the class-mean predictor beats the overall mean;
  targets independent of the class: it does worse (it fits noise per class)."""
  rng = np.random.default_rng(3)
  y = rng.integers(0, 4, 400)
  centres = rng.standard_normal((4, 8))
  t = centres[y] + 0.5 * rng.standard_normal((400, 8))
  r2 = probe_targets.class_mean_r2(t[:300], y[:300], t[300:], y[300:], 4)
  _, r2_mean = probe_targets.mean_predictor_scores(t[:300], t[300:])
  assert r2 > 0.6 > r2_mean  # signal variance 1 against noise 0.25: R^2 ~ 0.8
  noise = rng.standard_normal((400, 8))
  assert probe_targets.class_mean_r2(noise[:300], y[:300], noise[300:], y[300:], 4) < \
      probe_targets.mean_predictor_scores(noise[:300], noise[300:])[1]
  # A class with no training video falls back to the overall train mean.
  train = y[:300] != 3
  want = np.where((y[300:] == 3)[:, None], t[:300][train].mean(0),
                  np.stack([t[:300][train & (y[:300] == c)].mean(0) if c < 3 else np.zeros(8)
                            for c in range(4)])[y[300:]])
  got = probe_targets.class_mean_r2(t[:300][train], y[:300][train], t[300:], y[300:], 4)
  assert abs(got - metrics.r2_score(want, t[300:])) < 1e-12


def test_cv_block_weights_turn_down_a_noise_stream_chosen_on_train_only():
  rng = np.random.default_rng(3)
  n, k = 120, 4
  y = np.arange(n) % k
  signal = np.eye(k)[y] * 2.0 + rng.normal(size=(n, k))  # carries the class
  noise = rng.normal(size=(n, 200))  # many dimensions of nothing: the concatenation overfits it
  blocks = {'signal': signal, 'noise': noise}
  weights, cv_top1 = probe_targets.cv_block_weights(blocks, y, k, ridge=0.01)
  assert weights['signal'] > 0 and weights['noise'] < weights['signal']
  y_eval = np.arange(60) % k
  held = {'signal': np.eye(k)[y_eval] * 2.0 + rng.normal(size=(60, k)),
          'noise': rng.normal(size=(60, 200))}
  plain = probe_targets.ridge_probe_accuracy(np.concatenate([signal, noise], 1), y,
                                             np.concatenate([held['signal'], held['noise']], 1),
                                             y_eval, k, 0.01)
  weighted = probe_targets.ridge_probe_accuracy(
      probe_targets.weighted_blocks(blocks, blocks, weights), y,
      probe_targets.weighted_blocks(held, blocks, weights), y_eval, k, 0.01, standardize=False)
  assert weighted > plain + 0.1 and cv_top1 > 0.5
  # Unit weights on standardised blocks are the plain standardised probe.
  ones = {'signal': 1.0, 'noise': 1.0}
  same = probe_targets.ridge_probe_accuracy(
      probe_targets.weighted_blocks(blocks, blocks, ones), y,
      probe_targets.weighted_blocks(held, blocks, ones), y_eval, k, 0.01, standardize=False)
  assert same == plain
