"""Multi-moment descriptor (docs/method.md §3.7, 9.9) vs a plain re-implementation, plus invariances."""
import numpy as np
import pytest

from halluc_jax.descriptors import moments


def plain_multi_moment(cols, weights, n_eig):
  """docs/method.md §3.7 written out with loops; eigenvectors from the d x d matrix Y Y^T."""
  num, d = cols.shape
  mean = np.array([sum(cols[n, k] for n in range(num)) / num for k in range(d)])
  centred = cols - mean
  y = np.zeros((d, num))
  for n in range(num):
    for k in range(d):
      y[k, n] = weights[n] * centred[n, k]
  eigval, eigvec = np.linalg.eigh(y @ y.T)
  eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
  blocks = [mean / np.sqrt(np.sum(mean ** 2))]
  for i in range(n_eig):
    u = eigvec[:, i].copy()
    biggest = max(range(d), key=lambda k: abs(u[k]))
    blocks.append(u if u[biggest] > 0 else -u)
  skew, kurt = np.zeros(d), np.zeros(d)
  for k in range(d):
    k2 = sum(c ** 2 for c in centred[:, k]) / num
    k3 = sum(c ** 3 for c in centred[:, k]) / num
    k4 = sum(c ** 4 for c in centred[:, k]) / num
    skew[k], kurt[k] = k3 / k2 ** 1.5, k4 / k2 ** 2
  lam2 = np.clip(eigval[:min(num, d)], 0, None)
  eig_block = np.zeros(d)
  eig_block[:len(lam2)] = lam2 / lam2.sum()
  return np.concatenate(blocks + [skew, kurt, eig_block])


def split(vec, d, n_eig=3):
  return {'mean': vec[:d], 'eig_vecs': vec[d:d * (1 + n_eig)].reshape(n_eig, d),
          'skew': vec[d * (1 + n_eig):d * (2 + n_eig)],
          'kurt': vec[d * (2 + n_eig):d * (3 + n_eig)], 'eig_vals': vec[d * (3 + n_eig):]}


def random_columns(num, d, seed=0):
  rng = np.random.default_rng(seed)
  # Distinct per-dimension scales keep the eigenvalues well separated (stable eigenvectors).
  return rng.gamma(2.0, 1.0, size=(num, d)) * np.linspace(3.0, 0.5, d)


@pytest.mark.parametrize('num,d,weighted', [(12, 20, False), (40, 9, False), (15, 20, True),
                                            (60, 11, True)])
def test_matches_plain(num, d, weighted):  # N <= d takes the SVD route, N > d the Gram route.
  cols = random_columns(num, d)
  frames = np.sort(np.random.default_rng(1).integers(0, 5, num))
  weights = moments.odf_frame_weights(frames) if weighted else None
  got = moments.multi_moment(cols, weights, n_eig=3)
  assert got.shape == (d * 7,) and got.dtype == np.float64
  ref_w = weights if weighted else np.full(num, 1.0 / num)
  np.testing.assert_allclose(got, plain_multi_moment(cols, ref_w, 3), rtol=1e-7, atol=1e-9)


def test_odf_frame_weights_match_loops():
  frames = np.array([0, 0, 0, 2, 5, 5, 9])
  present = sorted(set(frames.tolist()))
  expect = [1.0 / (len(present) * int(np.sum(frames == f))) for f in frames]
  got = moments.odf_frame_weights(frames)
  np.testing.assert_allclose(got, expect, rtol=1e-15)
  for f in present:  # every frame carries the same total weight 1 / J
    np.testing.assert_allclose(got[frames == f].sum(), 1.0 / len(present))
  assert moments.odf_frame_weights(np.zeros(0, int)).shape == (0,)


def test_structure_of_blocks():
  cols = random_columns(30, 10)
  parts = split(moments.multi_moment(cols), 10)
  np.testing.assert_allclose(np.linalg.norm(parts['mean']), 1.0)
  vecs = parts['eig_vecs']
  np.testing.assert_allclose(vecs @ vecs.T, np.eye(3), atol=1e-10)
  for u in vecs:  # canonical sign: largest-magnitude entry positive
    assert u[np.argmax(np.abs(u))] > 0
  vals = parts['eig_vals']
  np.testing.assert_allclose(vals.sum(), 1.0)
  assert np.all(np.diff(vals) <= 1e-15) and np.all(vals >= 0)


def test_invariances():
  cols = random_columns(25, 8, seed=3)
  weights = moments.odf_frame_weights(np.arange(25) // 4)
  base = moments.multi_moment(cols, weights)
  perm = np.random.default_rng(0).permutation(25)
  np.testing.assert_allclose(moments.multi_moment(cols[perm], weights[perm]), base, atol=1e-10)
  # Positive scaling of the data (and of the weights) changes nothing.
  np.testing.assert_allclose(moments.multi_moment(4.0 * cols, 3.0 * weights), base, atol=1e-10)
  # Translation changes only the mean block.
  shifted = split(moments.multi_moment(cols + 7.0, weights), 8)
  for name in ('eig_vecs', 'skew', 'kurt', 'eig_vals'):
    np.testing.assert_allclose(shifted[name], split(base, 8)[name], atol=1e-9)
  # Negation: eigenvectors keep their canonical sign; odd moments flip, even ones stay.
  neg, ref = split(moments.multi_moment(-cols, weights), 8), split(base, 8)
  np.testing.assert_allclose(neg['mean'], -ref['mean'], atol=1e-12)
  np.testing.assert_allclose(neg['eig_vecs'], ref['eig_vecs'], atol=1e-10)
  np.testing.assert_allclose(neg['skew'], -ref['skew'], atol=1e-10)
  np.testing.assert_allclose(neg['kurt'], ref['kurt'], atol=1e-10)
  np.testing.assert_allclose(neg['eig_vals'], ref['eig_vals'], atol=1e-12)


def test_weights_change_the_subspace():
  cols = random_columns(20, 6, seed=5)
  weights = np.where(np.arange(20) < 3, 1.0, 0.01)
  assert not np.allclose(moments.multi_moment(cols, weights), moments.multi_moment(cols))


def test_planted_direction_and_known_moments():
  rng = np.random.default_rng(7)
  direction = np.array([0.0, -3.0, 4.0, 0.0]) / 5.0
  num = 40000
  cols = rng.normal(size=(num, 1)) * direction * 10 + rng.normal(size=(num, 4)) * 0.1
  cols[:, 0] = rng.exponential(size=num)  # skewness 2, kurtosis 9
  parts = split(moments.multi_moment(cols), 4)
  np.testing.assert_allclose(parts['eig_vecs'][0], direction, atol=1e-3)  # +0.8 is largest
  np.testing.assert_allclose(parts['skew'][0], 2.0, atol=0.15)
  np.testing.assert_allclose(parts['kurt'][0], 9.0, atol=1.5)
  np.testing.assert_allclose(parts['skew'][1:], 0.0, atol=0.05)
  np.testing.assert_allclose(parts['kurt'][1:], 3.0, atol=0.1)  # Gaussian dims


def test_no_columns_is_zero():
  got = moments.multi_moment(np.zeros((0, 5)))
  assert got.shape == (35,) and not got.any()


def test_single_column():
  v = np.array([3.0, 0.0, -4.0])
  parts = split(moments.multi_moment(v[None]), 3)
  np.testing.assert_allclose(parts['mean'], v / 5.0)
  for name in ('eig_vecs', 'skew', 'kurt', 'eig_vals'):
    assert not parts[name].any(), name


def test_fewer_columns_than_eigenvectors_pads_with_zeros():
  a, b = np.array([1.0, 2.0, 0.0, 5.0]), np.array([2.0, 0.0, 0.0, 5.0])
  parts = split(moments.multi_moment(np.stack([a, b])), 4)
  diff = (a - b) / np.linalg.norm(a - b)
  diff = diff if diff[np.argmax(np.abs(diff))] > 0 else -diff
  np.testing.assert_allclose(parts['eig_vecs'][0], diff, atol=1e-12)
  assert not parts['eig_vecs'][1:].any()
  np.testing.assert_allclose(parts['eig_vals'], [1.0, 0, 0, 0], atol=1e-12)
  # Constant dimensions 2 and 3 have zero variance: zero skewness and kurtosis there.
  np.testing.assert_array_equal(parts['skew'][2:], 0.0)
  np.testing.assert_array_equal(parts['kurt'][2:], 0.0)
  np.testing.assert_allclose(parts['kurt'][:2], 1.0)  # two-point distribution
  assert np.all(np.isfinite(parts['skew']))


@pytest.mark.parametrize('num', [5, 30])
def test_identical_columns_have_no_subspace(num):
  # 0.1 and 0.7 are not exact in binary: centring leaves ~1e-17 noise, not an exact zero.
  cols = np.tile([0.1, 0.7, 0.3], (num, 1))
  parts = split(moments.multi_moment(cols), 3)
  np.testing.assert_allclose(parts['mean'], cols[0] / np.linalg.norm(cols[0]))
  for name in ('eig_vecs', 'skew', 'kurt', 'eig_vals'):
    assert not parts[name].any(), name


@pytest.mark.parametrize('num', [4, 400])  # SVD route (N <= d) and Gram route (N > d)
def test_rank_one_data_keeps_one_direction(num):
  direction = np.array([0.3, -0.1, 0.7, 0.2, 0.1, 0.6])
  cols = 0.37 + np.outer(np.resize([0.1, 0.9, 0.4, 0.3], num), direction)
  parts = split(moments.multi_moment(cols), 6)
  np.testing.assert_allclose(parts['eig_vecs'][0], direction / np.linalg.norm(direction))
  assert not parts['eig_vecs'][1:].any()
  np.testing.assert_allclose(parts['eig_vals'], [1, 0, 0, 0, 0, 0], atol=1e-15)


def test_all_zero_columns_give_zeros():
  assert not moments.multi_moment(np.zeros((6, 4))).any()


def test_n_eig_sizes():
  cols = random_columns(10, 6)
  for n_eig in (0, 1, 5):
    assert moments.multi_moment(cols, n_eig=n_eig).shape == (moments.multi_moment_dim(6, n_eig),)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match='columns'):
    moments.multi_moment(np.zeros(5))
  with pytest.raises(ValueError, match='weights'):
    moments.multi_moment(np.ones((3, 2)), np.array([1.0, -1.0, 1.0]))
  with pytest.raises(ValueError, match='weights'):
    moments.multi_moment(np.ones((3, 2)), np.ones(2))
  with pytest.raises(ValueError, match='non-finite'):
    moments.multi_moment(np.full((3, 2), np.nan))


def test_canonical_sign_ignores_input_sign():
  vecs = np.random.default_rng(2).normal(size=(4, 9))
  flips = np.array([1.0, -1.0, -1.0, 1.0])[:, None]
  canon = moments.canonical_sign(vecs)
  np.testing.assert_array_equal(moments.canonical_sign(vecs * flips), canon)
  assert np.all(canon[np.arange(4), np.argmax(np.abs(canon), 1)] > 0)
  np.testing.assert_array_equal(np.abs(canon), np.abs(vecs))


def _moving_columns(direction, amplitude, num=12, d=6, seed=0):
  """ODF-like columns: coordinate 1 is the column's time, coordinate 0 moves with it
  (direction +1: rises, -1: falls) by `amplitude`; the rest is noise."""
  rng = np.random.default_rng(seed)
  times = np.arange(num)
  cols = rng.normal(0, 0.02, (num, d))
  cols[:, 0] += direction * amplitude * times / num
  cols[:, 1] += times / num
  return cols, times


@pytest.mark.parametrize('direction', [1, -1])
def test_time_sign_makes_the_direction_of_motion_linear(direction):
  signs = {rule: [] for rule in moments.EIG_SIGNS}
  for seed, amplitude in enumerate(np.linspace(0.5, 2.0, 8)):
    cols, times = _moving_columns(direction, amplitude, seed=seed)
    for rule in moments.EIG_SIGNS:
      u1 = split(moments.multi_moment(cols, times=times, eig_sign=rule), 6)['eig_vecs'][0]
      signs[rule].append((np.sign(u1[0]), np.sign(u1[1])))
  # 'time': u_1 points along the arrow of time, so its time entry is + and its motion entry
  # has the sign of the motion, whatever the amplitude.
  assert signs['time'] == [(direction, 1.0)] * 8
  # 'max_entry': the bigger of the two entries is +, so which entry carries the direction
  # depends on the amplitude (a rise and a fall can give the same vector's signs).
  if direction == -1:
    assert len(set(signs['max_entry'])) == 2


def test_time_sign_equals_projection_correlation_rule():
  rng = np.random.default_rng(3)
  cols, times = rng.normal(size=(9, 5)), rng.permutation(9)
  weights = rng.uniform(0.1, 1.0, 9)
  vec = moments.multi_moment(cols, weights, n_eig=3, times=times, eig_sign='time')
  mean = cols.mean(0)
  t_mean = np.sum(weights * times) / weights.sum()
  for u in split(vec, 5)['eig_vecs']:
    assert np.sum(weights * ((cols - mean) @ u) * (times - t_mean)) >= 0
  plain = moments.multi_moment(cols, weights, n_eig=3)
  np.testing.assert_allclose(np.abs(vec), np.abs(plain), atol=1e-12)  # only signs change


def test_time_sign_needs_times_and_known_rules():
  cols = np.ones((3, 2))
  with pytest.raises(ValueError, match='needs times'):
    moments.multi_moment(cols, eig_sign='time')
  with pytest.raises(ValueError, match='eig_sign'):
    moments.multi_moment(cols, eig_sign='largest')


def test_select_blocks_slices_in_psi_order():
  rng = np.random.default_rng(1)
  cols, d = rng.normal(size=(7, 4)), 4
  vec = moments.multi_moment(cols, n_eig=2)
  parts = {'mean': vec[:d], 'eig': vec[d:3 * d], 'skew': vec[3 * d:4 * d],
           'kurt': vec[4 * d:5 * d], 'eigval': vec[5 * d:]}
  np.testing.assert_array_equal(moments.select_blocks(vec, 2, 'eig,mean'),
                                np.concatenate([parts['mean'], parts['eig']]))
  np.testing.assert_array_equal(moments.select_blocks(vec, 2, moments.MOMENT_BLOCKS), vec)
  np.testing.assert_array_equal(moments.select_blocks(vec[None], 2, ('kurt',))[0], parts['kurt'])
  for bad in ('mean,cov', '', 'mean,mean'):
    with pytest.raises(ValueError, match='moment blocks'):
      moments.select_blocks(vec, 2, bad)
  with pytest.raises(ValueError, match='multiple'):
    moments.select_blocks(vec[:-1], 2, 'mean')
