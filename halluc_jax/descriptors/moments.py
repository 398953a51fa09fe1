"""The multi-moment descriptor shared by ODF, SDF and the flow features (docs/method.md §3.7, 9.9).

For N columns v_n in R^d (boxes of a video, or frames) the descriptor is, in float64,

  psi = [mu / ||mu||; u_1; ...; u_n'; k3 / k2^(3/2); k4 / k2^2; pad_d(lambda^2) / sum lambda^2]

with mu the mean column, c_n = v_n - mu, u_i the top left singular vectors of the weighted centred
matrix Y = [w_1 c_1, ..., w_N c_N] (singular values lambda), and k2, k3, k4 the per-dimension
central moments mean_n(c^r). Its length is d * (4 + n').

Following docs/method.md §3.7 literally, the weights enter only Y (and so the subspace and the eigenvalue
block); mu and the central moments are plain means over the columns.

Degenerate cases (docs/method.md §9.9):
  * N == 0: all zeros; the caller masks the target (see `odf.odf_descriptor`).
  * ||mu|| < eps: the mean block is zeros rather than a direction blown up from rounding noise.
  * k2 < eps: skewness and kurtosis are 0 for that dimension. Elsewhere they are the exact ratios
    (no "+ eps" in the denominator, which would break their invariance to scaling).
  * singular directions with no variance (fewer independent columns than n', constant data) are
    zero vectors, and so are their eigenvalues: a direction is kept when its weighted variance
    lambda^2 / sum_n w_n^2 is >= eps and lambda is above the numerical-rank tolerance.
Each kept u_i gets a canonical sign, so the regression target does not flip with the SVD's
arbitrary sign (`EIG_SIGNS`):
  * 'max_entry': its largest-magnitude entry is positive (docs/method.md §3.7);
  * 'time': it points along the arrow of time: the projections u_i . c_n of the columns must
    grow with the columns' times t_n (sum_n w_n (u_i . c_n)(t_n - t_mean) > 0), falling back to
    'max_entry' when that correlation vanishes. With 'max_entry' a motion and its time reversal
    (rise / fall) give u_i and -u_i at random, which no linear read-out can tell apart; with
    'time' they give u_i and -u_i consistently (docs/method.md, 'Descriptor choices').
"""
import numpy as np


EIG_SIGNS = ('max_entry', 'time')
MOMENT_BLOCKS = ('mean', 'eig', 'skew', 'kurt', 'eigval')  # psi's blocks, in psi's order


def multi_moment_dim(d, n_eig=3):
  """Length of the descriptor of d-dimensional columns: d * (4 + n_eig)."""
  return d * (4 + n_eig)


def parse_blocks(blocks):
  """A tuple of block names from 'mean,eig,...' (or a sequence); raises ValueError if unknown."""
  names = tuple(b.strip() for b in (blocks.split(',') if isinstance(blocks, str) else blocks)
                if b.strip())
  bad = [b for b in names if b not in MOMENT_BLOCKS]
  if bad or not names or len(set(names)) != len(names):
    raise ValueError(f'moment blocks {blocks!r}: expected distinct names from {MOMENT_BLOCKS}.')
  return tuple(b for b in MOMENT_BLOCKS if b in names)


def select_blocks(psi, n_eig, blocks=MOMENT_BLOCKS):
  """The chosen blocks of a multi-moment descriptor psi [..., d * (4 + n_eig)], in psi's order.

  docs/method.md §3.7 ablates the blocks (mean, n' eigenvectors, skewness, kurtosis,
  eigenvalues); this keeps a subset, e.g. ('mean', 'eig') for [mu / ||mu||; u_1..u_n'].

  Returns:
    [..., d * (len(blocks) + (n_eig - 1 if 'eig' in blocks else 0))].
  """
  psi = np.asarray(psi)
  d, rem = divmod(psi.shape[-1], 4 + n_eig)
  if rem:
    raise ValueError(f'select_blocks: length {psi.shape[-1]} is not a multiple of 4 + n_eig.')
  keep = parse_blocks(blocks)
  sizes = {'mean': d, 'eig': n_eig * d, 'skew': d, 'kurt': d, 'eigval': d}
  starts = np.cumsum([0] + [sizes[b] for b in MOMENT_BLOCKS])
  parts = [psi[..., starts[i]:starts[i + 1]] for i, b in enumerate(MOMENT_BLOCKS) if b in keep]
  return np.concatenate(parts, axis=-1)


def odf_frame_weights(frame_ids):
  """Per-box weights 1 / (J * K_j), so every frame with detections has the same total weight.

  Args:
    frame_ids: int array [N], the frame of each box. J is the number of distinct frames present
      (frames without boxes contribute nothing), K_j the number of boxes in frame j.

  Returns:
    float64 [N], summing to 1 (empty for N == 0).
  """
  frame_ids = np.asarray(frame_ids).reshape(-1)
  if frame_ids.size == 0:
    return np.zeros((0,), np.float64)
  _, inverse, counts = np.unique(frame_ids, return_inverse=True, return_counts=True)
  return 1.0 / (len(counts) * counts[inverse].astype(np.float64))


def canonical_sign(vectors):
  """Flips each row so that its largest-magnitude entry is positive (first one on ties).

  Args:
    vectors: [k, d].

  Returns:
    [k, d] with canonical signs; zero rows stay zero.
  """
  vectors = np.asarray(vectors, np.float64)
  if vectors.size == 0:
    return vectors
  pivot = vectors[np.arange(vectors.shape[0]), np.argmax(np.abs(vectors), axis=1)]
  return vectors * np.where(pivot < 0, -1.0, 1.0)[:, None]


def _top_subspace(weighted, n_eig):
  """Top singular directions of the d x N matrix Y, via the smaller of its two Gram matrices.

  The thin SVD Y = U diag(lambda) V^T is read off the eigen-decomposition of Y^T Y (N x N, when
  N <= d: V and lambda^2, then u_i = Y v_i / lambda_i) or of Y Y^T (d x d, when N > d: U and
  lambda^2 directly). Both are exact SVD identities; they cost O(d N min(d, N)) and avoid LAPACK's
  SVD, which is up to 40x slower than eigh on small matrices with a multithreaded BLAS on a busy
  machine. The price is precision: lambda is resolved to ~sqrt(machine eps) relative to lambda_1,
  hence the rank tolerance returned, far below any variance a descriptor should rely on.

  Returns:
    (lambda [min(d, N)] descending, vectors [min(d, N, n_eig), d], rank tolerance on lambda).
  """
  d, n = weighted.shape
  small_gram = weighted.T @ weighted if n <= d else weighted @ weighted.T
  eigval, eigvec = np.linalg.eigh(small_gram)
  order = np.argsort(eigval)[::-1]
  lam = np.sqrt(np.clip(eigval[order], 0.0, None))
  tol = lam[0] * np.sqrt(max(d, n) * np.finfo(np.float64).eps) * 4.0
  top = order[:n_eig]
  if n > d:
    return lam, eigvec[:, top].T, tol
  safe = np.where(lam[:len(top)] > tol, lam[:len(top)], 1.0)  # the rest are dropped later
  vecs = (weighted @ eigvec[:, top]) / safe
  # Unit length up to rounding already; renormalising removes the ~sqrt(eps) drift.
  vecs /= np.maximum(np.linalg.norm(vecs, axis=0), np.finfo(np.float64).tiny)
  return lam, vecs.T, tol


def time_oriented_sign(vectors, centred, weights, times):
  """Flips each row u_i of `vectors` so that sum_n w_n (u_i . c_n)(t_n - t_mean) >= 0.

  Rows whose projections do not correlate with time (|correlation| at rounding level, e.g. all
  columns at one time) keep the 'max_entry' sign instead.

  Args:
    vectors: [k, d] singular directions (rows), already zeroed where dropped.
    centred: [N, d] centred columns c_n.
    weights: [N] column weights w_n.
    times: [N] column times t_n (frame indices).

  Returns:
    [k, d] with oriented signs.
  """
  vectors = canonical_sign(vectors)
  if vectors.size == 0:
    return vectors
  times = np.asarray(times, np.float64).reshape(-1)
  total = weights.sum()
  t_mean = float(np.sum(weights * times) / total) if total > 0 else 0.0
  proj = centred @ vectors.T  # [N, k]
  corr = np.sum((weights * (times - t_mean))[:, None] * proj, axis=0)
  scale = np.sqrt(np.sum(weights[:, None] * proj ** 2, axis=0) *
                  np.sum(weights * (times - t_mean) ** 2)) + np.finfo(np.float64).tiny
  flip = corr / scale < -1e-9
  return vectors * np.where(flip, -1.0, 1.0)[:, None]


def multi_moment(columns, weights=None, n_eig=3, eps=1e-8, times=None, eig_sign='max_entry'):
  """The multi-moment descriptor of N columns (see the module docstring).

  Args:
    columns: [N, d] array, one observation per row (a box, a frame).
    weights: [N] non-negative column weights in Y (ODF: `odf_frame_weights`); None means 1 / N.
    n_eig: n', the number of leading singular vectors kept.
    eps: variance threshold for the degenerate cases.
    times: [N] time of each column (frame index); required by eig_sign='time'.
    eig_sign: how each u_i's sign is fixed, one of EIG_SIGNS.

  Returns:
    float64 [d * (4 + n_eig)].
  """
  columns = np.asarray(columns, np.float64)
  if columns.ndim != 2:
    raise ValueError(f'multi_moment expects columns [N, d], got shape {columns.shape}.')
  num, d = columns.shape
  if d == 0:
    raise ValueError('multi_moment got zero-dimensional columns.')
  if n_eig < 0:
    raise ValueError(f'multi_moment needs n_eig >= 0, got {n_eig}.')
  if not np.all(np.isfinite(columns)):
    raise ValueError('multi_moment got non-finite column values.')
  if eig_sign not in EIG_SIGNS:
    raise ValueError(f'multi_moment eig_sign={eig_sign!r}: expected one of {EIG_SIGNS}.')
  if eig_sign == 'time' and (times is None or np.shape(times) != (num,)):
    raise ValueError(f"multi_moment eig_sign='time' needs times of shape ({num},), got "
                     f'{None if times is None else np.shape(times)}.')
  out = np.zeros((multi_moment_dim(d, n_eig),), np.float64)
  if num == 0:
    return out
  if weights is None:
    weights = np.full((num,), 1.0 / num)
  weights = np.asarray(weights, np.float64).reshape(-1)
  if weights.shape != (num,) or np.any(weights < 0) or not np.all(np.isfinite(weights)):
    raise ValueError(f'multi_moment needs {num} finite non-negative weights, got {weights!r:.80}.')

  mean = columns.mean(axis=0)
  centred = columns - mean
  k2 = np.mean(centred ** 2, axis=0)
  k3 = np.mean(centred ** 3, axis=0)
  k4 = np.mean(centred ** 4, axis=0)
  has_var = k2 >= eps
  safe_k2 = np.where(has_var, k2, 1.0)
  skew = np.where(has_var, k3 / safe_k2 ** 1.5, 0.0)
  kurt = np.where(has_var, k4 / safe_k2 ** 2, 0.0)

  lam, vecs, rank_tol = _top_subspace((centred * weights[:, None]).T, n_eig)
  sum_w2 = float(np.sum(weights ** 2))
  keep = (lam > rank_tol) & (lam ** 2 >= eps * sum_w2) if sum_w2 > 0 else np.zeros_like(lam, bool)
  lam2 = np.where(keep, lam ** 2, 0.0)
  vecs = vecs * keep[:vecs.shape[0], None]
  vecs = (time_oriented_sign(vecs, centred, weights, times) if eig_sign == 'time'
          else canonical_sign(vecs))

  mean_norm = np.linalg.norm(mean)
  out[:d] = mean / mean_norm if mean_norm >= eps else 0.0
  out[d:d * (1 + vecs.shape[0])] = vecs.reshape(-1)
  base = d * (1 + n_eig)
  out[base:base + d] = skew
  out[base + d:base + 2 * d] = kurt
  if lam2.sum() > 0:
    out[base + 2 * d:base + 2 * d + min(lam2.size, d)] = (lam2 / lam2.sum())[:d]
  return out
