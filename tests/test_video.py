"""The PyAV video reader on a zoo of containers, codecs, pixel formats and broken files.

Every fixture frame encodes its own index (tests/video_fixtures.py), so each check asks for the
RIGHT frame, not only one of the right shape. The reference is a plain PyAV decode of the whole
file, independent of the reader's seeking and timestamp logic.
"""
import shutil

import av
import cv2
import numpy as np
import pytest

from halluc_jax.data import frame_rgb
from halluc_jax.data import video
import video_fixtures as vf

CFR = [n for n in vf.ZOO if n not in ('mkv_vfr', 'mp4_vfr')]


@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
  return vf.make_all(str(tmp_path_factory.mktemp('zoo')))


@pytest.fixture(scope='module')
def bad(tmp_path_factory):
  return vf.make_bad_files(str(tmp_path_factory.mktemp('bad')))


def _decode_all(path):
  """Every frame, in output order, upright RGB: the reference for the reader."""
  with av.open(path) as container:
    frames = []
    for frame in container.decode(video=0):
      rgb = frame.to_ndarray(format='rgb24')
      frames.append(np.rot90(rgb, k=round(frame.rotation / 90)))
  return np.stack(frames)


def _counters(frames):
  return [vf.read_counter(f) for f in frames]


@pytest.mark.parametrize('name', list(vf.ZOO))
def test_probe_counts_and_sizes(zoo, name):
  spec = zoo[name]
  info = video.probe(spec.path)
  assert isinstance(info, video.VideoInfo)
  assert info.num_frames == spec.num_frames
  assert (info.height, info.width, info.rotation) == (spec.height, spec.width, spec.rotation)
  if name in CFR:
    assert info.fps == pytest.approx(spec.fps, rel=1e-3)


@pytest.mark.parametrize('name', CFR)
def test_random_reads_match_sequential_decode(zoo, name):
  spec = zoo[name]
  reference = _decode_all(spec.path)
  assert _counters(reference) == list(range(spec.num_frames))  # The fixture itself is sound.
  rng = np.random.default_rng(abs(hash(name)) % 2**32)
  idx = rng.integers(0, spec.num_frames, 12)
  idx = np.concatenate([idx, idx[:3], [spec.num_frames - 1, 0]])  # Unsorted, repeated, ends.
  stats = {}
  frames = video.read_frames(spec.path, idx, stats=stats)
  assert frames.dtype == np.uint8 and frames.shape == (len(idx), spec.height, spec.width, 3)
  np.testing.assert_array_equal(frames, reference[idx])
  assert _counters(frames) == idx.tolist()
  assert stats['held'] == 0 and stats['decode_errors'] == 0
  assert stats['mode'] == ('count' if name == 'h264_raw' else 'pts')  # No silent fallback.


@pytest.mark.parametrize('name', [n for n in CFR if vf.ZOO[n][1].get('colour', True)])
def test_colour_sources_come_out_rgb(zoo, name):
  frame = video.read_frames(zoo[name].path, [3])[0]
  np.testing.assert_allclose(vf.band_colours(frame), 255 * np.eye(3), atol=30)  # R, G, B order.


@pytest.mark.parametrize('name', ['mp4_gray_h264', 'avi_gray_png'])
def test_grayscale_comes_out_three_equal_channels(zoo, name):
  frames = video.read_frames(zoo[name].path, [0, 7])
  assert frames.shape[-1] == 3
  np.testing.assert_array_equal(frames[..., 0], frames[..., 1])
  np.testing.assert_array_equal(frames[..., 1], frames[..., 2])
  assert _counters(frames) == [0, 7]


def test_gray_png_fixture_really_is_gray(zoo):
  with av.open(zoo['avi_gray_png'].path) as container:
    assert next(container.decode(video=0)).format.name == 'gray'


@pytest.mark.parametrize('name', ['mp4_rot90', 'mp4_rot270'])
def test_rotation_gives_the_upright_frame(zoo, name):
  spec = zoo[name]
  with av.open(spec.path) as container:
    stored = next(container.decode(video=0)).to_ndarray(format='rgb24')
  assert stored.shape[:2] == (spec.width, spec.height)  # Stored sideways.
  frames = video.read_frames(spec.path, [5, 1])
  assert frames.shape[1:3] == (spec.height, spec.width)
  assert _counters(frames) == [5, 1]  # Wrong direction (e.g. 270 for 90) scrambles the bits.
  np.testing.assert_allclose(vf.band_colours(frames[0]), 255 * np.eye(3), atol=30)


def test_seeking_decodes_far_fewer_frames_than_the_index(zoo):
  spec = zoo['mp4_long']
  stats = {}
  frames = video.read_frames(spec.path, [590, 10, 300], stats=stats)
  assert _counters(frames) == [590, 10, 300]
  assert stats['seeks'] >= 2 and stats['decoded'] < 120, stats  # Keyframes every 30 frames.
  clip = np.arange(500, 532, 2)
  frames = video.read_frames(spec.path, clip, stats=stats)
  assert _counters(frames) == clip.tolist()
  assert stats['seeks'] == 1 and stats['decoded'] < 70, stats
  video.read_frames(spec.path, [10, 40, 70], stats=stats)  # Gaps below SEEK_MIN_GAP: no seek.
  assert stats['seeks'] == 0 and stats['decoded'] <= 72


def test_seek_landing_far_behind_decodes_through_once(zoo):
  path = zoo['mp4_long_gop'].path
  for wanted, max_decoded in (([150], 151), ([200, 100], 201), ([310, 0, 200], 311)):
    stats = {}
    assert _counters(video.read_frames(path, wanted, stats=stats)) == wanted
    # Each seek lands on keyframe 0 or 250; the reader decodes on instead of seeking again.
    assert stats['mode'] == 'pts' and stats['seeks'] <= 1, (wanted, stats)
    assert stats['decoded'] <= max_decoded + 4, (wanted, stats)


def test_open_gop_leading_frames_make_the_reader_seek_back(zoo):
  spec = zoo['mp4_open_gop']
  reference = _decode_all(spec.path)
  backed_off = 0
  for idx in range(70, 200, 6):  # 70, 82, ... are leading frames of the keyframe after them.
    for i in (idx, idx + 1, idx + 2):
      stats = {}
      frame = video.read_frames(spec.path, [i], stats=stats)[0]
      np.testing.assert_array_equal(frame, reference[i])
      backed_off += stats['seeks'] > 1
  assert backed_off >= 10  # The retry path really ran, and still gave the right frames.


@pytest.mark.parametrize('name', ['mkv_vfr', 'mp4_vfr'])
def test_variable_frame_rate_serves_the_frame_on_screen(zoo, name):
  spec = zoo[name]
  info = video.probe(spec.path)
  times = vf.VFR_TIMES_MS / 1000.0
  # Average rate: frames over their span, the last one shown for at most the longest gap.
  assert spec.num_frames / (times[-1] + 0.08) <= info.fps <= spec.num_frames / times[-1]
  stats = {}
  frames = video.read_frames(spec.path, np.arange(info.num_frames), stats=stats)
  shown = np.array(_counters(frames))
  assert np.all(np.diff(shown) >= 0)
  slot = np.arange(info.num_frames) / info.fps
  half = 0.5 / info.fps
  assert np.all(times[shown] <= slot + half + 1e-3)  # It started by the end of the slot...
  nxt = np.minimum(shown + 1, spec.num_frames - 1)
  assert np.all((shown == spec.num_frames - 1) | (times[nxt] >= slot - half - 1e-3))  # ...and is
  assert stats['held'] > 0  # still on screen; some slots have no frame of their own.
  backwards = video.read_frames(spec.path, np.arange(info.num_frames)[::-7])
  np.testing.assert_array_equal(backwards, frames[::-7])


def test_stream_without_timestamps_is_read_by_counting(zoo):
  spec = zoo['h264_raw']
  stats = {}
  frames = video.read_frames(spec.path, [33, 2, 49, 2], stats=stats)
  assert stats['mode'] == 'count' and stats['seeks'] == 0
  assert _counters(frames) == [33, 2, 49, 2]


@pytest.mark.parametrize('threads', [0, 3])
def test_threaded_decoding_gives_identical_frames(zoo, threads):
  for name in ('mp4_long', 'webm_vp9', 'mp4_open_gop'):
    spec = zoo[name]
    idx = [spec.num_frames - 3, 5, 77 % spec.num_frames, 5]
    np.testing.assert_array_equal(video.read_frames(spec.path, idx, decode_threads=threads),
                                  video.read_frames(spec.path, idx, decode_threads=1))


@pytest.mark.parametrize('name', ['mp4_h264', 'mp4_rot90', 'webm_odd_vp9'])
def test_resize_short_side(zoo, name):
  spec = zoo[name]
  full = video.read_frames(spec.path, [4, 9])
  small = video.read_frames(spec.path, [4, 9], resize_short=24)
  short, long_ = sorted((spec.height, spec.width))
  expected = round(long_ * 24 / short)
  assert min(small.shape[1:3]) == 24 and max(small.shape[1:3]) == expected
  assert (small.shape[1] < small.shape[2]) == (spec.height < spec.width)  # Orientation kept.
  assert _counters(small) == [4, 9]
  area = np.stack([cv2.resize(f, small.shape[2:0:-1], interpolation=cv2.INTER_AREA) for f in full])
  assert np.abs(area.astype(int) - small).mean() < 8
  big = video.read_frames(spec.path, [4], resize_short=96)
  assert min(big.shape[1:3]) == 96 and _counters(big) == [4]


@pytest.mark.parametrize('name,reason', [
    ('corrupt', 'not a readable media file'), ('empty', 'empty file'),
    ('text', 'not a readable media file'), ('audio_only', 'no video stream'),
    ('missing', 'does not exist')])
def test_bad_files_raise_video_read_error_naming_the_path(bad, name, reason):
  path = bad[name]
  for call in (video.probe, lambda p: video.read_frames(p, [0])):
    with pytest.raises(video.VideoReadError, match=reason) as err:
      call(path)
    assert f"'{path}'" in str(err.value)


def test_directory_is_refused(tmp_path):
  with pytest.raises(video.VideoReadError, match='is a directory'):
    video.probe(str(tmp_path))


@pytest.mark.parametrize('name', ['truncated_mp4', 'truncated_avi'])
def test_truncated_file_serves_the_frames_it_holds(bad, name, caplog):
  spec = bad[name]
  info = video.probe(spec.path)
  assert 0 < info.num_frames < spec.num_frames // 2 + 8
  assert 'truncated' in caplog.text
  held = np.arange(info.num_frames)
  assert _counters(video.read_frames(spec.path, held[::-1])) == held[::-1].tolist()
  with pytest.raises(ValueError, match=f'out of range.*{info.num_frames} frames'):
    video.read_frames(spec.path, [0, spec.num_frames - 1])


def test_undecodable_frame_is_an_error_not_a_silent_substitute(bad):
  spec = bad['corrupt_frame']
  assert video.probe(spec.path).num_frames == spec.num_frames
  stats = {}
  assert _counters(video.read_frames(spec.path, [21, 19, 39], stats=stats)) == [21, 19, 39]
  with pytest.raises(video.VideoReadError, match=r'frames \[20\] are missing') as err:
    video.read_frames(spec.path, [19, 20, 21])
  assert spec.path in str(err.value)


def test_index_validation(zoo):
  path = zoo['mp4_h264'].path
  with pytest.raises(ValueError, match=r'\[-1, 96\] out of range') as err:
    video.read_frames(path, [3, 96, -1])
  assert path in str(err.value)
  with pytest.raises(ValueError, match='integer'):
    video.read_frames(path, [1.5])
  with pytest.raises(ValueError, match='1-D'):
    video.read_frames(path, [[1, 2]])
  assert video.read_frames(path, []).shape == (0, 48, 64, 3)
  assert video.read_frames(path, np.array([], np.int64), resize_short=24).shape == (0, 24, 32, 3)


def test_probe_cache_sees_a_rewritten_file(zoo, tmp_path):
  path = str(tmp_path / 'v.mkv')
  shutil.copy(zoo['mkv_ffv1'].path, path)
  assert video.probe(path).num_frames == 48
  vf.write_video(path, codec='ffv1', num_frames=12)  # Same path, new size and mtime.
  assert video.probe(path).num_frames == 12
  assert _counters(video.read_frames(path, [11])) == [11]


@pytest.mark.parametrize('name', list(vf.ZOO))
def test_opencv_rgb_conversion_is_within_a_few_levels_of_swscale(zoo, name):
  """config.data.rgb_conversion='opencv': cv2's I420 -> RGB for plain yuv420p (other formats
  keep swscale's), at native size and resized, rotation and frame order unchanged."""
  spec = zoo[name]
  for short in (None, 24):
    ref = video.read_frames(spec.path, [2, 7], resize_short=short)
    fast = video.read_frames(spec.path, [2, 7], resize_short=short, rgb_conversion='opencv')
    assert fast.shape == ref.shape and fast.dtype == np.uint8
    assert _counters(fast) == _counters(ref)  # the same frames (VFR files hold some)
    diff = np.abs(fast.astype(int) - ref)
    # Same matrix, other rounding; resized frames also differ by the resize filters.
    assert diff.mean() < (2.0 if short is None else 4.0), diff.mean()
  with pytest.raises(ValueError, match='rgb_conversion'):
    video.read_frames(spec.path, [0], rgb_conversion='fast')


def test_opencv_conversion_really_takes_the_cv2_path_for_yuv420p(zoo):
  path = zoo['mp4_h264'].path
  with av.open(path) as container:
    frame = next(container.decode(video=0))
  assert frame.format.name == 'yuv420p'
  got = frame_rgb.opencv_rgb(frame, frame.height, frame.width)
  want = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
  np.testing.assert_array_equal(got, want)
  assert not np.array_equal(got, frame.to_ndarray(format='rgb24'))  # not swscale's rounding
