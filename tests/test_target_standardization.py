"""Target standardisation (docs/method.md "Target standardisation"): train-split statistics,
z-scoring and its inverse, manifest round trip and the older-manifest fallback, what the loss
sees, evaluation in the original space with the train-mean baseline, linear heads."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from halluc_jax.evaluation import evaluate as ev
from halluc_jax import losses
from halluc_jax.evaluation import metrics
from halluc_jax import covariance as uncertainty_readout
from halluc_jax.data import aux_targets
from halluc_jax.data import clips
from halluc_jax.data import pipeline
from halluc_jax.models import hallucinator
from halluc_jax.models.streams import HeadSpec, StreamHead

DIMS = {'odf': 6, 'sdf': 4}
NUM_TRAIN, NUM_VAL = 9, 5


@pytest.fixture()
def targets(tmp_path):
  """A generic-layout CSV (empty video files) and a target folder without statistics.

  Train targets have a large per-dimension offset; train video 0's sdf holds a NaN, train video
  1 has no odf, val targets come from another distribution (they must not enter the stats).
  Returns (config, {stream: train rows that count [n, dim]}, raw records by video id).
  """
  rng = np.random.default_rng(0)
  lines = ['path,label,split']
  records = []
  for split, n, offset in (('train', NUM_TRAIN, 3.0), ('val', NUM_VAL, -7.0)):
    (tmp_path / split).mkdir()
    for i in range(n):
      (tmp_path / split / f'v{i}.mp4').write_bytes(b'')
      lines.append(f'{split}/v{i}.mp4,{"ab"[i % 2]},{split}')
      streams = {k: (offset + np.arange(d) + rng.normal(size=d) * (1 + np.arange(d)))
                 .astype(np.float32) for k, d in DIMS.items()}
      if split == 'train' and i == 0:
        streams['sdf'][2] = np.nan
      if split == 'train' and i == 1:
        del streams['odf']
      records.append((f'{split}/v{i}', streams))
  (tmp_path / 'annotations.csv').write_text('\n'.join(lines) + '\n')
  aux_dir = tmp_path / 'targets'
  aux_targets.write_targets(str(aux_dir), records,
                            {'streams': {k: {'dim': d} for k, d in DIMS.items()}})
  config = default.get_config()
  config.data.root = str(tmp_path)
  config.data.annotations = str(tmp_path / 'annotations.csv')
  config.data.aux_dir = str(aux_dir)
  train_rows = {k: np.stack([s[k] for vid, s in records if vid.startswith('train/') and k in s
                             and np.all(np.isfinite(s[k]))]) for k in DIMS}
  return config, train_rows, dict(records)


def test_masked_mean_std_matches_numpy_and_floors_constant_dims():
  rng = np.random.default_rng(1)
  values = rng.normal(size=(50, 5)) * [1, 2, 3, 4, 0] + [0, 5, -5, 1, 2]  # dim 4 is constant
  values[7, 1] = np.nan
  values[9, 3] = np.inf
  mask = (rng.random(50) > 0.3).astype(np.float32)
  mean, std, count = aux_targets.masked_mean_std(values, mask)
  keep = (mask > 0) & np.all(np.isfinite(values), axis=1)
  np.testing.assert_allclose(mean, values[keep].mean(0), rtol=1e-12, atol=1e-12)
  raw_std = values[keep].std(0)
  floor = aux_targets.STD_REL_FLOOR * np.sqrt(np.mean(raw_std ** 2))
  np.testing.assert_allclose(std, np.maximum(raw_std, floor), rtol=1e-12)
  assert count == keep.sum() and std[4] == pytest.approx(floor) and floor > 0
  assert aux_targets.masked_mean_std(values, np.zeros(50)) == (None, None, 0)


def test_running_moments_in_chunks_equal_one_pass():
  rng = np.random.default_rng(2)
  rows = rng.normal(size=(1000, 3)) * 0.01 + 1e4  # large mean, small spread
  moments = aux_targets.RunningMoments(3)
  for chunk in np.split(rows, [1, 300, 301, 999]):
    moments.update(chunk)
  assert moments.count == 1000
  np.testing.assert_allclose(moments.mean, rows.mean(0), rtol=1e-14)
  np.testing.assert_allclose(moments.std(), rows.std(0), rtol=1e-8)


def test_standardize_destandardize_round_trip_float32():
  rng = np.random.default_rng(3)
  y = (rng.normal(size=(64, 16)) * 3 + 10).astype(np.float32)
  mean, std, _ = aux_targets.masked_mean_std(y)
  mean, std = mean.astype(np.float32), std.astype(np.float32)
  z = aux_targets.standardize(y, mean, std)
  assert z.dtype == np.float32
  np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(z.std(0), 1, atol=1e-5)
  np.testing.assert_allclose(aux_targets.destandardize(z, mean, std), y, rtol=1e-6, atol=1e-5)
  zj = aux_targets.standardize(jnp.asarray(y), mean, std)  # the same maths on jax arrays
  np.testing.assert_allclose(np.asarray(zj), z, rtol=1e-6, atol=1e-6)


def test_stats_from_train_split_only_ignoring_missing_and_nan(targets):
  config, train_rows, _ = targets
  assert aux_targets.STATS_KEY not in aux_targets.read_manifest(config.data.aux_dir)
  stats = aux_targets.train_split_stats(config)  # older manifest: computed on the fly
  assert stats['split'] == 'train' and stats['num_videos'] == NUM_TRAIN
  for name, rows in train_rows.items():
    got = stats['streams'][name]
    assert got['count'] == len(rows) == NUM_TRAIN - 1  # one NaN sdf, one missing odf
    np.testing.assert_allclose(got['mean'], rows.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(got['std'], rows.astype(np.float64).std(0), rtol=1e-12)


def test_manifest_round_trip_and_stored_stats_are_used(targets, monkeypatch):
  config, _, _ = targets
  computed = aux_targets.train_split_stats(config)
  stored = aux_targets.store_train_stats(config)
  manifest = aux_targets.read_manifest(config.data.aux_dir)
  assert manifest[aux_targets.STATS_KEY] == stored == json.loads(json.dumps(computed))
  assert len(manifest['index']) == NUM_TRAIN + NUM_VAL  # the rest of the manifest is kept

  def no_recompute(*args, **kwargs):
    raise AssertionError('stats in the manifest must not be recomputed')

  monkeypatch.setattr(aux_targets, 'compute_store_stats', no_recompute)
  assert aux_targets.train_split_stats(config) == stored
  # Stats of another split do not match: they are recomputed (here: refused by the patch).
  config.data.train_split = 'val'
  with pytest.raises(AssertionError, match='must not be recomputed'):
    aux_targets.train_split_stats(config)


def test_absent_split_is_a_clear_error(targets, tmp_path):
  config, _, records = targets
  config.data.train_split = 'nosuch'
  with pytest.raises(ValueError, match="no rows for split 'nosuch'"):
    aux_targets.train_split_stats(config)
  # A split in the CSV whose videos were never extracted (targets of val only).
  only_val = tmp_path / 'only_val'
  aux_targets.write_targets(str(only_val), [(v, s) for v, s in records.items()
                                            if v.startswith('val/')],
                            {'streams': {k: {'dim': d} for k, d in DIMS.items()}})
  config.data.train_split, config.data.aux_dir = 'train', str(only_val)
  with pytest.raises(ValueError, match=r"any of the 9 videos of split 'train'"):
    aux_targets.train_split_stats(config)


def test_store_standardises_present_targets_only(targets):
  config, _, records = targets
  store = aux_targets.store_for_config(config)
  assert store.standardizer is not None
  stats = aux_targets.train_split_stats(config)
  t, m, _ = store.lookup('val/v2')
  raw, _, _ = store.lookup('val/v2', raw=True)
  for k in DIMS:
    mean, std = (np.asarray(stats['streams'][k][x], np.float32) for x in ('mean', 'std'))
    np.testing.assert_allclose(t[k], (records['val/v2'][k] - mean) / std, rtol=1e-6)
    np.testing.assert_array_equal(raw[k], records['val/v2'][k])
  t, m, bad = store.lookup('train/v1')  # no odf: zeros and mask 0, standardised or not
  assert m['odf'] == 0 and not t['odf'].any() and m['sdf'] == 1
  config.data.standardize_targets = False
  assert aux_targets.store_for_config(config).standardizer is None


@pytest.mark.parametrize('standardize', [True, False])
def test_loss_sees_standardised_targets_when_on_and_raw_when_off(targets, standardize):
  """Batch rows built as the pipeline builds them; the loss is 0 exactly for predictions in the
  space the switch selects."""
  config, _, records = targets
  config.data.standardize_targets = standardize
  store = pipeline._aux_store(config)  # pylint: disable=protected-access
  ids = ['train/v2', 'train/v3', 'val/v0']
  rows = [clips.aux_fields(store, v) for v in ids]
  batch = {'aux': {k: np.stack([r['aux'][k] for r in rows]) for k in DIMS},
           'aux_mask': {k: np.stack([r['aux_mask'][k] for r in rows]) for k in DIMS},
           'valid': np.ones(3, np.float32)}
  stats = aux_targets.train_split_stats(config)
  raw = {k: np.stack([records[v][k] for v in ids]) for k in DIMS}
  z = {k: (raw[k] - np.float32(stats['streams'][k]['mean'])) / np.float32(stats['streams'][k]['std'])
       for k in DIMS}
  cfg = {'hallucination': 'mse'}
  expected_space, other_space = (z, raw) if standardize else (raw, z)
  loss, _ = losses.hallucination_loss({'hallucinated': expected_space}, batch, cfg)
  assert float(loss) == pytest.approx(0.0, abs=1e-8)
  loss, _ = losses.hallucination_loss({'hallucinated': other_space}, batch, cfg)
  assert float(loss) > 1.0


def _eval_batches(store, ids, predict):
  batches = []
  for start in range(0, len(ids), 4):
    chunk = ids[start:start + 4]
    rows = [clips.aux_fields(store, v) for v in chunk]
    batches.append({
        'video': np.zeros((len(chunk), 1), np.float32), 'label': np.zeros(len(chunk), np.int64),
        'valid': np.ones(len(chunk), np.float32),
        'video_index': np.arange(start, start + len(chunk), dtype=np.int32),
        'aux': {k: np.stack([r['aux'][k] for r in rows]) for k in DIMS},
        'aux_mask': {k: np.stack([r['aux_mask'][k] for r in rows]) for k in DIMS},
        'pred': predict(rows)})
  return batches


def _predict_fn(batch):
  return {'logits': np.zeros((len(batch['valid']), 2)), 'hallucinated': batch['pred']}


def test_evaluation_in_original_space_with_train_mean_baseline(targets):
  config, train_rows, records = targets
  store = aux_targets.store_for_config(config)
  args = ev.target_space_args(config)
  assert args['standardized'] and args['train_stats'] is not None
  zero = lambda rows: {k: np.zeros((len(rows), d), np.float32) for k, d in DIMS.items()}
  train_ids = [v for v in records if v.startswith('train/')]
  val_ids = [v for v in records if v.startswith('val/')]

  # z = 0 is the train mean: on the train videos its original-space R^2 is 0 per stream.
  res = ev.evaluate(_predict_fn, _eval_batches(store, train_ids, zero), 2, **args)
  for k in DIMS:
    q = res['hallucination'][k]
    assert q['num_clips'] == NUM_TRAIN - 1
    assert q['r2'] == pytest.approx(0.0, abs=1e-6) and q['train_mean_r2'] == pytest.approx(0.0,
                                                                                             abs=1e-6)
    mean = train_rows[k].astype(np.float64).mean(0)
    cos = metrics.cosine_similarity(np.broadcast_to(mean, train_rows[k].shape), train_rows[k])
    assert q['cosine'] == pytest.approx(cos.mean(), rel=1e-5) == q['train_mean_cosine']

  # On val (another distribution) the mean is a poor predictor, and the model's figures are
  # those of direct numpy in the original space.
  rng = np.random.default_rng(4)
  noise = {k: rng.normal(size=(NUM_VAL, d)).astype(np.float32) for k, d in DIMS.items()}
  offset = {'n': 0}

  def noisy(rows):
    out = {k: noise[k][offset['n']:offset['n'] + len(rows)] for k in DIMS}
    offset['n'] += len(rows)
    return out

  res = ev.evaluate(_predict_fn, _eval_batches(store, val_ids, noisy), 2, **args)
  stats = aux_targets.train_split_stats(config)
  for k in DIMS:
    mean, std = (np.asarray(stats['streams'][k][x], np.float32) for x in ('mean', 'std'))
    y = np.stack([records[v][k] for v in val_ids]).astype(np.float64)
    pred = noise[k].astype(np.float64) * std + mean
    q = res['hallucination'][k]
    assert q['r2'] == pytest.approx(metrics.r2_score(pred, y), rel=1e-5)
    assert q['cosine'] == pytest.approx(metrics.cosine_similarity(pred, y).mean(), rel=1e-5)
    base = np.broadcast_to(mean.astype(np.float64), y.shape)
    assert q['train_mean_r2'] == pytest.approx(metrics.r2_score(base, y), rel=1e-5)
    assert q['train_mean_r2'] < -1  # val's offset differs from train's

  # Perfect predictions of z are perfect in the original space too.
  perfect = lambda rows: {k: np.stack([r['aux'][k] for r in rows]) for k in DIMS}
  res = ev.evaluate(_predict_fn, _eval_batches(store, val_ids, perfect), 2, **args)
  assert all(q['r2'] == pytest.approx(1.0) for q in res['hallucination'].values())

  # Switch off: raw targets, raw predictions, the baseline still reported.
  config.data.standardize_targets = False
  args = ev.target_space_args(config)
  assert not args['standardized']
  raw_store = aux_targets.store_for_config(config)
  res = ev.evaluate(_predict_fn, _eval_batches(raw_store, val_ids, perfect), 2, **args)
  assert all(q['r2'] == pytest.approx(1.0) and 'train_mean_r2' in q
             for q in res['hallucination'].values())
  with pytest.raises(ValueError, match='needs train_stats'):
    ev.evaluate(_predict_fn, [], 2, standardized=True)


def test_linear_heads_when_standardising():
  cfg = default.get_config().model
  cfg.backbone.overrides = {'depth': 1, 'width': 32, 'mlp_dim': 64, 'num_heads': 2}
  cfg.fusion.out_dim = 16
  cfg.cenet.hidden_dim = 8
  video = jnp.zeros((2, 4, 32, 32, 3))
  outs = {}
  for standardized in (False, True):
    model = hallucinator.build_model(cfg, {'odf': 8}, 3, standardized_targets=standardized)
    variables = nn.meta.unbox(model.init(
        {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)}, video, train=False))
    # A large head bias: AsinhE squashes it to ~ 2, the linear head passes it through.
    params = jax.tree.map(lambda a: a, variables['params'])
    params['streams']['odf']['fc']['bias'] = jnp.full((8,), 50.0)
    outs[standardized] = model.apply({**variables, 'params': params}, video, train=False)
    assert model.stream_head.pn == ('none' if standardized else cfg.streams.pn)
    assert model.haf_head.pn == cfg.streams.pn  # HAF keeps the PN
    head = params['streams']['odf']['fc']
    linear = outs[standardized]['features'] @ head['kernel'] + head['bias']
  assert float(jnp.max(outs[False]['hallucinated']['odf'])) < 3.0
  np.testing.assert_allclose(outs[True]['hallucinated']['odf'], linear, rtol=1e-5, atol=1e-4)


def test_stream_variances_scale_back_to_the_original_space():
  rng = np.random.default_rng(5)
  dims = {'odf': 3, 'sdf': 2}
  log_diag = rng.normal(size=(4, 5)) * 0.3
  std = {'odf': np.array([1.0, 2.0, 0.5]), 'sdf': np.array([3.0, 0.1])}
  per_coordinate = uncertainty_readout.coordinate_variances({'log_diag': log_diag}, 'diag', dims)
  z_space = uncertainty_readout.stream_variances({'log_diag': log_diag}, 'diag', dims)
  y_space = uncertainty_readout.stream_variances({'log_diag': log_diag}, 'diag', dims, std)
  np.testing.assert_allclose(per_coordinate['odf'], np.exp(-2 * log_diag[:, :3]))
  np.testing.assert_allclose(z_space['sdf'], np.exp(-2 * log_diag[:, 3:]).mean(1))
  np.testing.assert_allclose(y_space['sdf'], (np.exp(-2 * log_diag[:, 3:]) * std['sdf'] ** 2)
                             .mean(1))


def test_tiny_head_reaches_a_constant_offset_target_only_when_standardised():
  """A linear head on standardised targets reaches y = 5 + small noise (back in the original
  space); the paper's AsinhE(gamma'=100) head on the raw targets cannot reach 5."""
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.normal(size=(32, 16)), jnp.float32)
  y = (5.0 + 0.1 * rng.normal(size=(32, 8))).astype(np.float32)
  mean, std, _ = aux_targets.masked_mean_std(y)
  mean, std = mean.astype(np.float32), std.astype(np.float32)

  def fit(head, target):
    params = head.init(jax.random.PRNGKey(0), x)
    tx = optax.adam(3e-2)
    opt = tx.init(params)
    loss_fn = lambda p: jnp.mean((head.apply(p, x) - target) ** 2)

    @jax.jit
    def step(p, o):
      grads = jax.grad(loss_fn)(p)
      updates, o = tx.update(grads, o, p)
      return optax.apply_updates(p, updates), o

    for _ in range(200):
      params, opt = step(params, opt)
    return np.asarray(head.apply(params, x))

  z_pred = fit(StreamHead(8, HeadSpec(pn='none', pn_params=())),
               aux_targets.standardize(y, mean, std))
  y_pred = aux_targets.destandardize(z_pred, mean, std)
  assert abs(float(y_pred.mean()) - 5.0) < 0.05
  assert metrics.r2_score(np.broadcast_to(mean, y.shape), y) <= 1e-6  # mean: R^2 0 in sample
  pn_pred = fit(StreamHead(8), y)  # AsinhE, gamma' = 100, on raw targets
  assert float(pn_pred.max()) < 3.0


def test_varying_coordinates_mark_the_floored_dims():
  """0 exactly where the train std was raised to the floor (a constant target coordinate)."""
  rng = np.random.default_rng(3)
  rows = rng.normal(size=(50, 6)) * np.array([1.0, 2.0, 0.0, 0.5, 1e-7, 3.0]) + 4.0
  _, std, _ = aux_targets.masked_mean_std(rows)
  np.testing.assert_array_equal(aux_targets.varying_coordinates(std), [1, 1, 0, 1, 0, 1])
  assert aux_targets.varying_coordinates(np.zeros(3)).sum() == 0  # all-constant stream


def test_batches_carry_the_varying_coordinates_when_standardised(targets):
  """Every row (padding too) gets aux_varies from the train statistics; raw targets get none."""
  config, _, _ = targets
  store = pipeline._aux_store(config)  # pylint: disable=protected-access
  stats = aux_targets.train_split_stats(config)
  for video_id in ('train/v2', None):
    fields = clips.aux_fields(store, video_id)
    for k in DIMS:
      np.testing.assert_array_equal(fields['aux_varies'][k], aux_targets.varying_coordinates(
          stats['streams'][k]['std']))
  config.data.standardize_targets = False
  assert 'aux_varies' not in clips.aux_fields(pipeline._aux_store(config), 'train/v2')  # pylint: disable=protected-access
