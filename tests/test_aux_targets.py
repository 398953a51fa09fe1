"""The auxiliary-target store: write, read back, missing videos and NaN targets."""
import numpy as np
import pytest

from halluc_jax.data import aux_targets


def test_round_trip_missing_and_nan(tmp_path):
  rng = np.random.default_rng(0)
  odf = rng.normal(size=(3, 8)).astype(np.float32)
  sdf = rng.normal(size=(3, 4)).astype(np.float32)
  sdf[2, 1] = np.nan
  records = [(f'v{i}', {'odf': odf[i], 'sdf': sdf[i]}) for i in range(3)]
  records[1] = ('v1', {'odf': odf[1]})  # v1 has no sdf
  manifest = {'streams': {'odf': {'dim': 8}, 'sdf': {'dim': 4}}}
  aux_targets.write_targets(str(tmp_path), records, manifest, records_per_shard=2)
  store = aux_targets.AuxTargetStore(str(tmp_path))
  assert len(store) == 3 and store.dims == {'odf': 8, 'sdf': 4}

  t, m, bad = store.lookup('v0')
  np.testing.assert_array_equal(t['odf'], odf[0])
  np.testing.assert_array_equal(t['sdf'], sdf[0])
  assert m == {'odf': 1.0, 'sdf': 1.0} and bad == 0

  t, m, bad = store.lookup('v1')
  assert m['sdf'] == 0.0 and not t['sdf'].any() and m['odf'] == 1.0

  t, m, bad = store.lookup('v2')  # NaN target: masked and counted
  assert m['sdf'] == 0.0 and np.all(np.isfinite(t['sdf'])) and bad == 1

  t, m, bad = store.lookup('never-extracted')
  assert all(v == 0.0 for v in m.values()) and bad == 0


def test_wrong_dim_and_missing_manifest(tmp_path):
  with pytest.raises(ValueError, match='manifest says 8'):
    aux_targets.write_targets(str(tmp_path), [('v', {'odf': np.zeros(3)})],
                              {'streams': {'odf': {'dim': 8}}})
  with pytest.raises(FileNotFoundError, match='manifest'):
    aux_targets.AuxTargetStore(str(tmp_path / 'nowhere'))
