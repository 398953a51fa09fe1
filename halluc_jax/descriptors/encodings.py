"""Video-level encodings of local descriptors: PCA, bag of words, improved Fisher vectors.

The paper's BoW / FV streams (docs/method.md §3.1, SPEC §3.1) encode a video's IDT descriptors
X = {x_n}, n = 1..N, with a codebook fitted on training videos (descriptors/codebooks.py):

  PCA      z = C (x - m), rows of C the top principal directions (fitted per descriptor part).
  BoW      h_k = #{n : k = argmin_j ||z_n - c_j||^2} / N (hard assignment, average pooling =
           L1 normalisation), then h <- sign(h) |h|^alpha and h / ||h||_2.
  FV       a diagonal GMM (w_k, mu_k, sigma_k^2), posteriors g_nk = p(k | z_n), u_nk =
           (z_n - mu_k) / sigma_k (Perronnin, Sanchez & Mensink 2010; Sanchez et al. 2013):
             G_mu_k    = 1 / (N sqrt(w_k))    sum_n g_nk u_nk               (first order, K D)
             G_sigma_k = 1 / (N sqrt(2 w_k))  sum_n g_nk (u_nk^2 - 1)       (second order, K D)
           the paper's per-cluster block p(k|x) / sqrt(w_k) [u_k; v_k / sqrt(2)] averaged over
           X. 'Improved': each returned vector gets sign |.|^alpha then l2 normalisation. The
           paper treats the first- and second-order halves as two targets (fv1, fv2); 'both'
           normalises their concatenation as one vector (Perronnin's FV).

All functions are pure numpy (float64); an empty X gives an all-zero vector (an absent target).
"""
import numpy as np

FV_ORDERS = ('first', 'second', 'both')


def pca_apply(x, mean, components):
  """[N, k] projections (x - mean) @ components.T of [N, D] rows on k directions [k, D]."""
  return (np.asarray(x, np.float64) - mean) @ np.asarray(components, np.float64).T


def power_l2(vec, alpha=0.5):
  """sign(v) |v|^alpha, then l2-normalised (zero stays zero); alpha = 1 skips the power."""
  vec = np.sign(vec) * np.abs(vec) ** alpha
  norm = np.linalg.norm(vec)
  return vec / norm if norm > 0 else vec


def squared_distances(x, centres):
  """[N, K] ||x_n - c_k||^2 (expanded form, clipped at 0 against rounding)."""
  x, centres = np.asarray(x, np.float64), np.asarray(centres, np.float64)
  d = (x * x).sum(1)[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(1)[None, :]
  return np.maximum(d, 0.0)


def nearest(x, centres, chunk=4096):
  """int [N] index of each row's nearest centre (chunked: bounded [chunk, K] memory)."""
  x = np.asarray(x, np.float64)
  return np.concatenate([squared_distances(x[i:i + chunk], centres).argmin(1)
                         for i in range(0, len(x), chunk)] or [np.zeros(0, np.int64)])


def bow_histogram(x, centres, alpha=0.5):
  """The improved BoW vector [K] of descriptors x [N, D] against k-means centres [K, D]."""
  hist = np.bincount(nearest(x, centres), minlength=len(centres)).astype(np.float64)
  if len(x):
    hist /= len(x)
  return power_l2(hist, alpha)


def gmm_log_joint(x, weights, means, variances):
  """[N, K] log w_k + log N(x_n; mu_k, diag sigma_k^2)."""
  x = np.asarray(x, np.float64)
  log_det = np.log(variances).sum(1)  # [K]
  inv = 1.0 / variances
  mahal = ((x * x) @ inv.T - 2.0 * x @ (means * inv).T + (means * means * inv).sum(1)[None, :])
  dims = x.shape[1]
  return np.log(weights)[None, :] - 0.5 * (dims * np.log(2 * np.pi) + log_det[None, :] + mahal)


def gmm_posteriors(x, weights, means, variances):
  """[N, K] responsibilities p(k | x_n) (log-sum-exp, rows sum to 1)."""
  joint = gmm_log_joint(x, weights, means, variances)
  joint -= joint.max(1, keepdims=True)
  post = np.exp(joint)
  return post / post.sum(1, keepdims=True)


def fisher_gradients(x, weights, means, variances):
  """(G_mu [K, D], G_sigma [K, D]): the normalised FV gradients of descriptors x [N, D]."""
  x = np.asarray(x, np.float64)
  if not len(x):
    return np.zeros_like(means), np.zeros_like(means)
  post = gmm_posteriors(x, weights, means, variances)  # [N, K]
  sigma = np.sqrt(variances)
  count = post.sum(0)[:, None]  # [K, 1] sum_n g_nk
  first_moment = post.T @ x  # [K, D] sum_n g_nk x_n
  second_moment = post.T @ (x * x)
  # sum_n g_nk u_nk and sum_n g_nk (u_nk^2 - 1) from the moments: O(K D) memory, not O(N K D).
  u_sum = (first_moment - count * means) / sigma
  uu_sum = (second_moment - 2.0 * means * first_moment + count * means * means) / variances
  n, sqrt_w = len(x), np.sqrt(weights)[:, None]
  return u_sum / (n * sqrt_w), (uu_sum - count) / (n * np.sqrt(2.0) * sqrt_w)


def fisher_vector(x, weights, means, variances, order='first', alpha=0.5):
  """The improved FV of descriptors x [N, D]: 'first' [K D], 'second' [K D] or 'both' [2 K D]
  (G_mu, then G_sigma), cluster-major, power- and l2-normalised."""
  if order not in FV_ORDERS:
    raise ValueError(f'fisher_vector: order={order!r}: expected one of {FV_ORDERS}.')
  g_mu, g_sigma = fisher_gradients(x, weights, means, variances)
  vec = {'first': g_mu.reshape(-1), 'second': g_sigma.reshape(-1),
         'both': np.concatenate([g_mu.reshape(-1), g_sigma.reshape(-1)])}[order]
  return power_l2(vec, alpha)
