"""The IDT streams end to end on tiny real videos: three streams with their documented dims, the
codebook fitted on the train split only, reused on rerun, untouched by val videos."""
import os
import shutil

import numpy as np
import pytest

from configs import default
from halluc_jax.data import aux_targets
from halluc_jax.descriptors import codebooks, trajectories
from halluc_jax.targets import extract
from halluc_jax.targets import extraction
from halluc_jax.targets import idt_fit
from halluc_jax.targets import idt_video

STREAMS = ('bow_idt', 'fv1_idt', 'fv2_idt')
WORDS, COMPONENTS, LENGTH = 8, 2, 6


@pytest.fixture()
def dataset(tiny_dataset, tmp_path):
  """A copy of the tiny dataset (file links, so a test may swap one video)."""
  root = tmp_path / 'data'
  for split in ('train', 'val'):
    (root / split).mkdir(parents=True)
    for name in os.listdir(tiny_dataset / split):
      os.symlink(tiny_dataset / split / name, root / split / name)
  for name in ('classes.txt', 'annotations.csv'):
    shutil.copy(tiny_dataset / name, root / name)
  return root


def _config(root, out_dir):
  c = default.get_config()
  c.data.root, c.data.annotations = str(root), str(root / 'annotations.csv')
  c.extract.out_dir = str(out_dir)
  c.extract.split = 'train,val'
  c.extract.streams = ','.join(STREAMS)
  c.extract.num_workers = 0
  c.extract.progress = False
  # Small enough for 48 px clips of 12-24 frames.
  c.extract.idt.update({'track_length': LENGTH, 'patch_size': 8, 'grid_step': 4, 'min_var': 0.5,
                        'bow_words': WORDS, 'gmm_components': COMPONENTS, 'fit_per_video': 40})
  return c


def _split_paths(root, split):
  return {str(root / split / n) for n in os.listdir(root / split)}


def test_three_streams_with_documented_dims_and_train_only_fit(dataset, tmp_path, monkeypatch):
  seen = []
  original = idt_video.video_descriptors
  monkeypatch.setattr(idt_video, 'video_descriptors',
                      lambda path, settings: seen.append(path) or original(path, settings))
  config = _config(dataset, tmp_path / 'targets')
  summary = extract.run_extraction(config)
  # The fit (first) saw train videos only; the extraction then every video of both splits.
  train, val = _split_paths(dataset, 'train'), _split_paths(dataset, 'val')
  fit_calls = seen[:len(train)]
  assert set(fit_calls) == train
  assert set(seen[len(train):]) == train | val
  reduced = sum(int(round(d / 2)) for d in trajectories.part_dims(LENGTH).values())
  manifest = aux_targets.read_manifest(config.extract.out_dir)
  raw = {n: manifest['streams'][n]['raw_dim'] for n in STREAMS}
  assert raw == {'bow_idt': WORDS, 'fv1_idt': COMPONENTS * reduced,
                 'fv2_idt': COMPONENTS * reduced}
  for name in STREAMS:
    entry = manifest['streams'][name]
    assert entry['dim'] == 128 and entry['group'] == name[:3]
    assert entry['source']['name'] == 'idt'
    assert entry['source']['parameters']['encoding'] == name[:3]
    assert summary['num_present'][name] >= 20, summary  # clips of >= L + 1 moving frames
  book, fingerprint = codebooks.Codebook.load(str(tmp_path / 'targets' / idt_fit.CODEBOOK_FILE))
  assert book.dims() == {'bow': WORDS, 'fv1': COMPONENTS * reduced, 'fv2': COMPONENTS * reduced}
  assert fingerprint == manifest['streams']['bow_idt']['source']['parameters'][
      'codebook_fingerprint']
  # The targets are the train-fitted encodings, sketched: recompute one by hand.
  vid, path = idt_fit.train_videos(config)[0]
  store = aux_targets.AuxTargetStore(config.extract.out_dir)
  from halluc_jax.targets import extract_video  # pylint: disable=g-import-not-at-top
  spec = idt_fit.with_codebook(config, extract_video.stream_specs(config.extract))['fv1_idt']
  want = extract_video.sketch_target(book.encode(original(path, spec['params']['settings']),
                                                 'fv1'), spec)
  np.testing.assert_allclose(store.lookup(vid, raw=True)[0]['fv1_idt'], want, rtol=1e-5, atol=1e-7)


def test_codebook_is_reused_and_ignores_val_videos(dataset, tmp_path):
  config = _config(dataset, tmp_path / 'targets')
  book_path = tmp_path / 'targets' / idt_fit.CODEBOOK_FILE
  extract.run_extraction(config)
  first_bytes, first_mtime = book_path.read_bytes(), book_path.stat().st_mtime_ns
  val_dir = dataset / 'val'
  victim = sorted(os.listdir(val_dir))[0]
  other = sorted(os.listdir(val_dir))[1]
  os.remove(val_dir / victim)
  os.symlink(os.path.realpath(val_dir / other), val_dir / victim)  # a different val video
  vid = os.path.splitext(victim)[0]
  before = aux_targets.AuxTargetStore(config.extract.out_dir).lookup(vid, raw=True)[0]
  shutil.rmtree(tmp_path / 'targets' / extraction.CACHE_DIR)  # force the val video's recompute
  summary = extract.run_extraction(config)
  assert book_path.stat().st_mtime_ns == first_mtime and book_path.read_bytes() == first_bytes
  assert len(summary['computed']) == summary['num_videos']
  after = aux_targets.AuxTargetStore(config.extract.out_dir).lookup(vid, raw=True)[0]
  assert not np.allclose(before['bow_idt'], after['bow_idt'])  # the val target did change
  # A changed train video does refit it.
  train_dir = dataset / 'train'
  names = sorted(os.listdir(train_dir))
  os.remove(train_dir / names[0])
  shutil.copy(os.path.realpath(train_dir / names[1]), train_dir / names[0])
  with open(train_dir / names[0], 'ab') as f:
    f.write(b'\0')  # a different size: the fingerprint covers the train files' sizes
  old_fingerprint = codebooks.Codebook.load(str(book_path))[1]
  extract.run_extraction(config)
  assert codebooks.Codebook.load(str(book_path))[1] != old_fingerprint


def test_idt_source_without_a_codebook_is_a_clear_error():
  with pytest.raises(ValueError, match='fits it on the train split'):
    idt_video.IdtEncoder('bow')


def test_fit_sample_is_the_same_in_worker_processes(dataset, tmp_path):
  config = _config(dataset, tmp_path / 'targets')
  settings, videos = idt_fit.settings_of(config), idt_fit.train_videos(config)[:4]
  in_process, used = idt_fit.sample_descriptors(videos, settings, num_workers=0)
  spawned, _ = idt_fit.sample_descriptors(videos, settings, num_workers=2)
  assert used == 4 and len(in_process) == 4 * 40  # fit_per_video rows of each
  np.testing.assert_array_equal(in_process, spawned)


def test_unreadable_train_video_is_left_out_of_the_fit(dataset, tmp_path):
  config = _config(dataset, tmp_path / 'targets')
  junk = tmp_path / 'junk.mp4'
  junk.write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'junk' * 64)
  videos = idt_fit.train_videos(config)[:2] + [('junk', str(junk)), ('gone', str(tmp_path / 'no'))]
  x, used = idt_fit.sample_descriptors(videos, idt_fit.settings_of(config))
  assert used == 2 and len(x) == 2 * 40
