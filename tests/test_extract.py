"""End-to-end target extraction on the tiny dataset: manifest, records, cache, skips, resume."""
import os
import shutil

import cv2
import numpy as np
import pytest

from configs import default
from halluc_jax.targets import extract
from halluc_jax.targets import extraction
from halluc_jax.targets import extract_video
from halluc_jax.data import aux_targets
from halluc_jax.data.aux_targets import AuxTargetStore
from halluc_jax.descriptors import flow, odf, sdf
from halluc_jax.descriptors.sources import LABEL_SPACE, detectors

@pytest.fixture(scope='module')
def first_run(extract_dataset, extract_config, tmp_path_factory):
  num_train = extract_dataset[1]
  out_dir = tmp_path_factory.mktemp('targets')
  config = extract_config(out_dir, num_workers=2)  # spawned worker processes
  return config, extract.run_extraction(config), num_train


def test_manifest_describes_every_stream(first_run, extract_dataset):
  config, _, num_train = first_run
  store = AuxTargetStore(config.extract.out_dir)
  streams = store.manifest['streams']
  assert sorted(streams) == sorted(config.extract.streams.split(','))
  for name, entry in streams.items():
    spec = config.extract.stream[name]
    assert entry['dim'] == spec.d * spec.num_sketches == store.dims[name]
    assert entry['group'] == spec.group
    assert entry['sketch_seeds'] == [spec.seed + k for k in range(spec.num_sketches)]
    assert entry['pn'] == {'name': 'sigme', 'params': {'eta': 50.0, 'eps': 1e-6}}
    assert entry['source']['name'] == spec.source
    assert entry['source']['opencv_version'] == cv2.__version__
    assert 0 <= entry['num_present'] <= num_train
    assert entry['moments'] == {'blocks': ['mean', 'eig'], 'n_eig': 1, 'eig_sign': 'time'}
  # [mean; u_1] of the per-box (per-frame) columns: 2 column lengths.
  crop_dim = detectors.CROP_SCORE_DIM
  assert streams['odf_shape']['raw_dim'] == 2 * odf.odf_box_dim(len(LABEL_SPACE), crop_dim)
  assert streams['sdf_spectral']['raw_dim'] == 2 * sdf.sdf_frame_dim()
  assert streams['off_hofmbh']['raw_dim'] == 2 * flow.flow_frame_dim()
  # score >= 0.9 keeps actor-sized shapes only; 4 frames of a motion-family clip may show none
  assert streams['odf_shape']['num_present'] > num_train // 2
  assert streams['odf_shape']['source']['parameters']['score_threshold'] == 0.9
  assert store.manifest['skipped_videos'].keys() == {extract_dataset[2]}


def test_records_equal_the_cached_values(first_run):
  config, summary, num_train = first_run
  store = AuxTargetStore(config.extract.out_dir)
  assert len(store) == num_train == len(summary['computed'])
  cache_dir = os.path.join(config.extract.out_dir, extraction.CACHE_DIR)
  checked = 0
  for video_id in summary['computed']:
    cached = extraction.load_cache(extraction.cache_path(cache_dir, video_id))
    targets, masks, num_bad = store.lookup(video_id)
    assert num_bad == 0
    for name, entry in cached.items():
      if entry['target'] is None:
        assert masks[name] == 0 and not targets[name].any()
      else:
        assert masks[name] == 1
        np.testing.assert_array_equal(targets[name], entry['target'])
        assert np.all(np.abs(entry['target']) <= np.sqrt(len(entry['target'])))
        checked += 1
  assert checked >= 4 * num_train  # shape, both saliencies and flow exist for every clip


def test_manifest_holds_train_split_target_stats(first_run, tmp_path):
  """Per-dimension mean/std over the train split's present targets, as direct numpy on the
  records; `--stats_only` (store_train_stats) on the folder recomputes the same numbers."""
  config, summary, num_train = first_run
  store = AuxTargetStore(config.extract.out_dir)
  stats = store.manifest[aux_targets.STATS_KEY]
  assert stats['split'] == 'train' and stats['num_videos'] == num_train
  for name in store.dims:
    rows = [t[name] for t, m, _ in map(store.lookup, summary['computed']) if m[name] > 0]
    entry = stats['streams'][name]
    assert entry['count'] == len(rows) == store.manifest['streams'][name]['num_present']
    if rows:
      rows = np.stack(rows).astype(np.float64)
      np.testing.assert_allclose(entry['mean'], rows.mean(0), rtol=1e-9, atol=1e-12)
      np.testing.assert_allclose(entry['std'], aux_targets.floored_std(rows.std(0)), rtol=1e-9)
  copy = tmp_path / 'targets'
  shutil.copytree(config.extract.out_dir, copy,
                  ignore=shutil.ignore_patterns(extraction.CACHE_DIR))
  manifest = aux_targets.read_manifest(str(copy))
  del manifest[aux_targets.STATS_KEY]
  aux_targets.write_manifest(str(copy), manifest)  # as extracted before the statistics existed
  again = aux_targets.store_train_stats(config, str(copy))
  assert aux_targets.read_manifest(str(copy))[aux_targets.STATS_KEY] == again
  for name, entry in stats['streams'].items():
    assert again['streams'][name]['count'] == entry['count']
    if entry['count']:
      np.testing.assert_allclose(again['streams'][name]['mean'], entry['mean'], rtol=1e-9)


def test_corrupt_video_is_skipped_and_reported(first_run, extract_dataset):
  config, summary, _ = first_run
  corrupt_id = extract_dataset[2]
  assert list(summary['skipped']) == [corrupt_id]
  assert 'VideoReadError' in summary['skipped'][corrupt_id]
  targets, masks, _ = AuxTargetStore(config.extract.out_dir).lookup(corrupt_id)
  assert not any(masks.values()) and not any(t.any() for t in targets.values())


def test_rerun_resumes_from_the_cache(first_run, extract_dataset, extract_config, tmp_path):
  config, summary, num_train = first_run
  out_dir = tmp_path / 'resumed'
  shutil.copytree(config.extract.out_dir, out_dir)
  cache_dir = out_dir / extraction.CACHE_DIR
  dropped = summary['computed'][0]
  os.remove(extraction.cache_path(str(cache_dir), dropped))  # as if interrupted before this one
  config = extract_config(out_dir)
  again = extract.run_extraction(config)
  assert again['computed'] == [dropped]
  assert len(again['cached']) == num_train - 1
  assert list(again['skipped']) == [extract_dataset[2]]  # failures are retried, never cached
  before = AuxTargetStore(str(first_run[0].extract.out_dir))
  after = AuxTargetStore(str(out_dir))
  for video_id in summary['computed']:
    for name in after.dims:
      np.testing.assert_array_equal(after.lookup(video_id)[0][name],
                                    before.lookup(video_id)[0][name])


def test_changed_stream_settings_recompute_only_that_stream(first_run, extract_config, tmp_path):
  config, summary, _ = first_run
  out_dir = tmp_path / 'changed'
  shutil.copytree(config.extract.out_dir, out_dir)
  config = extract_config(out_dir, streams='odf_shape,sdf_spectral')
  config.extract.stream.sdf_spectral.d = 32
  again = extract.run_extraction(config)
  assert sorted(again['computed']) == sorted(summary['computed'])  # sdf_spectral was stale
  store = AuxTargetStore(str(out_dir))
  assert store.dims == {'odf_shape': 128, 'sdf_spectral': 32}
  before = AuxTargetStore(str(first_run[0].extract.out_dir))
  vid = summary['computed'][0]
  np.testing.assert_array_equal(store.lookup(vid)[0]['odf_shape'],
                                before.lookup(vid)[0]['odf_shape'])


def test_unknown_stream_is_a_clear_error(extract_config):
  config = extract_config('/tmp/unused', streams='odf_shape,odf_yolo')
  with pytest.raises(ValueError, match='odf_yolo'):
    extract.run_extraction(config)


@pytest.mark.parametrize('key,value', [('eig_sign', 'largest'), ('moments', 'mean,cov')])
def test_bad_descriptor_settings_are_a_clear_error(extract_config, key, value):
  config = extract_config('/tmp/unused', streams='odf_shape')
  config.extract[key] = value
  with pytest.raises(ValueError, match=f'odf_shape.{key}'):
    extract.run_extraction(config)


def test_paper_descriptor_settings_give_the_full_psi(extract_config, tmp_path):
  config = extract_config(tmp_path / 'paper', streams='sdf_spectral', n_eig=3, eig_sign='max_entry',
                          moments='mean,eig,skew,kurt,eigval')
  extract.run_extraction(config)
  entry = AuxTargetStore(str(tmp_path / 'paper')).manifest['streams']['sdf_spectral']
  assert entry['raw_dim'] == sdf.sdf_dim(n_eig=3)
  assert entry['moments'] == {'blocks': ['mean', 'eig', 'skew', 'kurt', 'eigval'], 'n_eig': 3,
                              'eig_sign': 'max_entry'}


def test_visualize_writes_a_png_per_stream_grid(tiny_dataset, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from halluc_jax.targets import visualize  # pylint: disable=g-import-not-at-top
  video_path = str(next((tiny_dataset / 'train').glob('*.mp4')))
  specs = extract_video.built_in_specs(default.get_config())
  assert {s['source'] for s in specs.values()} == set(extract_video.BUILT_IN)
  out = visualize.render(video_path, str(tmp_path / 'v.png'), specs, num_frames=3)
  image = np.asarray(Image.open(out).convert('RGB'))
  assert image.shape[1] > image.shape[0] > 200  # 8 columns x 3 rows of panels
  assert image.std() > 20  # not blank
