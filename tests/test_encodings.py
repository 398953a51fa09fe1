"""BoW / Fisher-vector encodings and their codebook fit, against explicit per-descriptor loops."""
import math

import numpy as np
import pytest

from halluc_jax.descriptors import codebooks, encodings


def _tiny_gmm(rng, k=3, d=4):
  weights = rng.random(k) + 0.2
  return (weights / weights.sum(), rng.normal(size=(k, d)), rng.random((k, d)) + 0.3)


def _posteriors_by_loop(x, weights, means, variances):
  post = np.zeros((len(x), len(weights)))
  for n in range(len(x)):
    for k in range(len(weights)):
      density = weights[k]
      for j in range(x.shape[1]):
        density *= math.exp(-(x[n, j] - means[k, j]) ** 2 / (2 * variances[k, j])) / math.sqrt(
            2 * math.pi * variances[k, j])
      post[n, k] = density
    post[n] /= post[n].sum()
  return post


def test_posteriors_match_explicit_densities():
  rng = np.random.default_rng(0)
  gmm = _tiny_gmm(rng)
  x = rng.normal(size=(7, 4))
  np.testing.assert_allclose(encodings.gmm_posteriors(x, *gmm), _posteriors_by_loop(x, *gmm),
                             rtol=1e-10)


def test_fisher_gradients_match_perronnin_formulas_by_loop():
  rng = np.random.default_rng(1)
  weights, means, variances = _tiny_gmm(rng)
  x = rng.normal(size=(9, 4))
  post = _posteriors_by_loop(x, weights, means, variances)
  g_mu, g_sigma = np.zeros_like(means), np.zeros_like(means)
  for n in range(len(x)):
    for k in range(len(weights)):
      for j in range(x.shape[1]):
        u = (x[n, j] - means[k, j]) / math.sqrt(variances[k, j])
        g_mu[k, j] += post[n, k] * u / (len(x) * math.sqrt(weights[k]))
        g_sigma[k, j] += post[n, k] * (u * u - 1) / (len(x) * math.sqrt(2 * weights[k]))
  got_mu, got_sigma = encodings.fisher_gradients(x, weights, means, variances)
  np.testing.assert_allclose(got_mu, g_mu, rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(got_sigma, g_sigma, rtol=1e-9, atol=1e-12)
  # The improved FV: signed square root, then l2, per returned vector.
  for order, raw in (('first', g_mu.reshape(-1)), ('second', g_sigma.reshape(-1)),
                     ('both', np.concatenate([g_mu.reshape(-1), g_sigma.reshape(-1)]))):
    want = np.sign(raw) * np.sqrt(np.abs(raw))
    np.testing.assert_allclose(encodings.fisher_vector(x, weights, means, variances, order),
                               want / np.linalg.norm(want), rtol=1e-8, atol=1e-12)


def test_fisher_vector_of_no_descriptors_is_zero_and_order_is_checked():
  gmm = _tiny_gmm(np.random.default_rng(2))
  assert not np.any(encodings.fisher_vector(np.zeros((0, 4)), *gmm, order='second'))
  with pytest.raises(ValueError, match='order'):
    encodings.fisher_vector(np.zeros((1, 4)), *gmm, order='third')


def test_bow_histogram_is_hard_assignment_then_power_l2():
  rng = np.random.default_rng(3)
  centres, x = rng.normal(size=(5, 3)), rng.normal(size=(40, 3))
  counts = np.zeros(5)
  for row in x:
    counts[int(np.argmin([np.sum((row - c) ** 2) for c in centres]))] += 1
  for alpha in (1.0, 0.5):
    want = (counts / len(x)) ** alpha
    np.testing.assert_allclose(encodings.bow_histogram(x, centres, alpha),
                               want / np.linalg.norm(want), rtol=1e-12)
  assert not np.any(encodings.bow_histogram(np.zeros((0, 3)), centres))


def test_pca_fit_is_the_top_covariance_eigenbasis():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(200, 5)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.1]) @ np.linalg.qr(
      rng.normal(size=(5, 5)))[0]
  mean, comps = codebooks.pca_fit(x, 2)
  np.testing.assert_allclose(mean, x.mean(0))
  np.testing.assert_allclose(comps @ comps.T, np.eye(2), atol=1e-10)
  _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
  np.testing.assert_allclose(np.abs(comps @ vt[:2].T), np.eye(2), atol=1e-8)
  projected = encodings.pca_apply(x, mean, comps)
  np.testing.assert_allclose(projected, (x - mean) @ comps.T)
  assert projected[:, 0].var() > projected[:, 1].var()


def _blobs(rng, centres, per=60, scale=0.05):
  return np.concatenate([c + scale * rng.normal(size=(per, len(c))) for c in centres])


def test_kmeans_and_gmm_recover_separated_clusters():
  rng = np.random.default_rng(5)
  truth = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
  x = _blobs(rng, truth)
  centres = codebooks.kmeans_fit(x, 3, seed=0)
  order = np.argsort(centres[:, 0] * 10 + centres[:, 1])
  np.testing.assert_allclose(centres[order], truth[[0, 2, 1]], atol=0.05)
  weights, means, variances = codebooks.gmm_fit(x, 3, seed=0, var_floor=1e-5)
  np.testing.assert_allclose(np.sort(weights), [1 / 3] * 3, atol=1e-3)
  np.testing.assert_allclose(np.sort(np.sqrt(variances).ravel()), 0.05, atol=0.015)
  with pytest.raises(ValueError, match='descriptors for'):
    codebooks.kmeans_fit(x[:2], 3)


def test_gmm_em_does_not_decrease_the_likelihood():
  rng = np.random.default_rng(6)
  x = _blobs(rng, rng.normal(size=(4, 3)) * 2, per=40, scale=0.7)
  likelihoods = []
  for iters in (0, 1, 3, 10):
    gmm = codebooks.gmm_fit(x, 4, iters=iters, seed=0)
    joint = encodings.gmm_log_joint(x, *gmm)
    peak = joint.max(1, keepdims=True)
    likelihoods.append(float((peak[:, 0] + np.log(np.exp(joint - peak).sum(1))).sum()))
  assert np.all(np.diff(likelihoods) >= -1e-6), likelihoods


def test_codebook_encodes_parts_and_round_trips(tmp_path):
  rng = np.random.default_rng(7)
  parts = (('a', 4), ('b', 6))
  x = rng.normal(size=(300, 10))
  book = codebooks.fit_codebook(x, parts, pca_fraction=0.5, bow_words=8, gmm_components=3)
  assert [len(book.pca[p][1]) for p, _ in parts] == [2, 3]
  np.testing.assert_allclose(book.reduce(x)[:, :2], encodings.pca_apply(x[:, :4], *book.pca['a']))
  assert book.dims() == {'bow': 8, 'fv1': 15, 'fv2': 15}
  video = x[:20]
  for kind, dim in book.dims().items():
    assert book.encode(video, kind).shape == (dim,)
  np.testing.assert_allclose(book.encode(video, 'fv2'), encodings.fisher_vector(
      book.reduce(video), *book.gmm, order='second'))
  book.save(str(tmp_path / 'book.npz'), 'abc')
  loaded, fingerprint = codebooks.Codebook.load(str(tmp_path / 'book.npz'))
  assert fingerprint == 'abc'
  for kind in codebooks.ENCODINGS:
    np.testing.assert_allclose(loaded.encode(video, kind), book.encode(video, kind))
  with pytest.raises(ValueError, match='kind'):
    book.encode(video, 'vlad')
