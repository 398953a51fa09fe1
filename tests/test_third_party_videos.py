"""Real videos made by others (OpenCV's sample clips, Debian package `opencv-doc`) go through
the reader and the extraction sources without a crash, and indexed reads match a plain decode.

`.ci/run` installs `opencv-doc`; on a machine without it these tests are skipped, saying so.
"""
import gzip
import os
import shutil

import av
import numpy as np
import pytest

from halluc_jax.data import sampling, video

_DOC = '/usr/share/doc/opencv-doc'
_FILES = [os.path.join(_DOC, 'examples/data', n) for n in
          ('vtest.avi', 'Megamind.avi', 'Megamind_bugy.avi', 'tree.avi')]
_GZ = [os.path.join(_DOC, 'opencv4/html', n) for n in ('cup.mp4.gz', 'box.mp4.gz')]

pytestmark = pytest.mark.skipif(not os.path.isdir(_DOC),
                                reason='Debian package opencv-doc (real sample videos) absent')


@pytest.fixture(scope='module')
def third_party(tmp_path_factory):
  out = tmp_path_factory.mktemp('third_party')
  paths = [p for p in _FILES if os.path.isfile(p)]
  for gz in _GZ:
    if os.path.isfile(gz):
      dst = out / os.path.basename(gz)[:-3]
      with gzip.open(gz, 'rb') as src, open(dst, 'wb') as f:
        shutil.copyfileobj(src, f)
      paths.append(str(dst))
  assert paths, f'opencv-doc is installed but holds none of {_FILES + _GZ}'
  return paths


def _sequential(path, limit):
  with av.open(path) as c:
    frames = []
    for frame in c.decode(video=0):
      frames.append(frame.to_ndarray(format='rgb24'))
      if len(frames) >= limit:
        break
  return frames


def test_reader_matches_sequential_decode(third_party):
  for path in third_party:
    info = video.probe(path)
    assert info.num_frames > 0 and info.height > 0 and info.width > 0, path
    seq = _sequential(path, limit=120)
    # Compare where the file's own frames are all coded (tree.avi holds dropped-frame slots).
    indices = sampling.dense_indices(min(info.num_frames, len(seq)), 8, 3)
    got = video.read_frames(path, indices[::-1])
    assert got.shape == (len(indices), info.height, info.width, 3), path
    if os.path.basename(path) != 'tree.avi':
      for k, i in enumerate(indices[::-1]):
        np.testing.assert_array_equal(got[k], seq[i], err_msg=f'{path} frame {i}')


def test_multi_clip_reads_whole_videos(third_party):
  for path in third_party:
    info = video.probe(path)
    clips = sampling.multi_clip_indices(info.num_frames, 8, 4, num_clips=3)
    frames = video.read_frames(path, clips.ravel(), resize_short=64)
    assert frames.shape[0] == clips.size and min(frames.shape[1:3]) == 64, path


def test_saliency_and_shape_sources_run(third_party):
  from halluc_jax.descriptors.sources import detectors, saliency  # pylint: disable=g-import-not-at-top
  path = third_party[0]
  info = video.probe(path)
  idx = np.arange(0, min(info.num_frames, 16))
  frames = video.read_frames(path, idx, resize_short=128)
  dets = detectors.build_detector('hog')(frames, idx)
  assert np.all((dets.boxes >= 0) & (dets.boxes <= 1))
  maps = saliency.build_saliency('spectral')(frames)
  assert maps.shape[0] == len(idx) and np.isfinite(maps).all()
