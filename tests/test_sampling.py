"""Frame-index sampling: shapes, ranges, centring, randomness, short videos, multi-clip coverage."""
import numpy as np
import pytest

from halluc_jax.data import sampling


@pytest.mark.parametrize('num_frames', [1, 5, 31, 32, 33, 300])
@pytest.mark.parametrize('mode', sampling.MODES)
def test_shape_dtype_and_range(num_frames, mode):
  rng = np.random.default_rng(0)
  for r in (None, rng):
    idx = sampling.sample_indices(mode, num_frames, 16, 2, r)
    assert idx.shape == (16,) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < num_frames
  clips = sampling.multi_clip_indices(num_frames, 16, 2, 3, mode)
  assert clips.shape == (3, 16) and clips.dtype == np.int64
  assert clips.min() >= 0 and clips.max() < num_frames


def test_dense_eval_clip_is_centred_with_the_stride():
  idx = sampling.dense_indices(100, 8, 4, rng=None)
  np.testing.assert_array_equal(np.diff(idx), 4)
  span = idx[-1] - idx[0] + 1  # 29 frames
  assert idx[0] == (100 - span) // 2 and 100 - 1 - idx[-1] - idx[0] in (0, 1)


def test_dense_training_start_is_random_and_covers_the_valid_range():
  rng = np.random.default_rng(1)
  starts = [sampling.dense_indices(40, 8, 2, rng)[0] for _ in range(400)]
  assert min(starts) == 0 and max(starts) == 40 - 15  # Every legal start, none past the end.
  assert len(set(starts)) == 26
  for _ in range(20):
    np.testing.assert_array_equal(np.diff(sampling.dense_indices(40, 8, 2, rng)), 2)


def test_same_seed_same_clip_and_eval_is_deterministic():
  a = sampling.sample_indices('dense', 500, 16, 4, np.random.default_rng(7))
  b = sampling.sample_indices('dense', 500, 16, 4, np.random.default_rng(7))
  c = sampling.sample_indices('dense', 500, 16, 4, np.random.default_rng(8))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  for mode in sampling.MODES:
    np.testing.assert_array_equal(sampling.sample_indices(mode, 500, 16, 4),
                                  sampling.sample_indices(mode, 500, 16, 4))


def test_short_video_dense_loops_by_repetition():
  idx = sampling.dense_indices(5, 8, 2, rng=None)
  np.testing.assert_array_equal(idx, np.arange(0, 16, 2) % 5)
  idx = sampling.dense_indices(5, 8, 2, rng=np.random.default_rng(0))
  np.testing.assert_array_equal(idx, np.arange(0, 16, 2) % 5)
  np.testing.assert_array_equal(sampling.dense_indices(1, 4, 3), [0, 0, 0, 0])


def test_uniform_takes_one_frame_per_segment():
  rng = np.random.default_rng(2)
  num_frames, clip_len = 103, 8
  edges = np.linspace(0, num_frames, clip_len + 1)
  seen = np.zeros(num_frames, bool)
  for _ in range(300):
    idx = sampling.uniform_indices(num_frames, clip_len, rng)
    assert np.all(idx >= np.floor(edges[:-1])) and np.all(idx < edges[1:])
    seen[idx] = True
  assert seen.all()  # Random offsets reach every frame of every segment.
  centre = sampling.uniform_indices(num_frames, clip_len)
  np.testing.assert_array_equal(centre, np.floor((edges[:-1] + edges[1:]) / 2).astype(int))


def test_uniform_short_video_repeats_frames_in_order():
  idx = sampling.uniform_indices(3, 8)
  assert np.all(np.diff(idx) >= 0) and set(idx.tolist()) == {0, 1, 2}
  rng = np.random.default_rng(3)
  for _ in range(50):
    idx = sampling.uniform_indices(3, 8, rng)
    assert np.all(np.diff(idx) >= 0) and idx.max() <= 2


def test_multi_clip_dense_spreads_from_start_to_end():
  clips = sampling.multi_clip_indices(300, 16, 4, 5, 'dense')
  starts = clips[:, 0]
  assert starts[0] == 0 and clips[-1, -1] == 299  # First clip at the start, last at the end.
  assert np.ptp(np.diff(starts)) <= 1  # Evenly spaced (up to rounding).
  np.testing.assert_array_equal(np.diff(clips, axis=1), 4)
  one = sampling.multi_clip_indices(300, 16, 4, 1, 'dense')
  np.testing.assert_array_equal(one[0], sampling.dense_indices(300, 16, 4))


def test_multi_clip_uniform_shifts_offsets_and_stays_in_segments():
  num_frames, clip_len, num_clips = 160, 8, 4
  clips = sampling.multi_clip_indices(num_frames, clip_len, 1, num_clips, 'uniform')
  edges = np.linspace(0, num_frames, clip_len + 1)
  assert np.all(clips >= np.floor(edges[:-1])) and np.all(clips < edges[1:])
  np.testing.assert_array_equal(np.diff(clips, axis=0), 5)  # 20-frame segments / 4 clips.
  assert len({tuple(c) for c in clips.tolist()}) == num_clips
  one = sampling.multi_clip_indices(num_frames, clip_len, 1, 1, 'uniform')
  np.testing.assert_array_equal(one[0], sampling.uniform_indices(num_frames, clip_len))


def test_bad_arguments_raise_clear_errors():
  with pytest.raises(ValueError, match='unknown sampling mode'):
    sampling.sample_indices('random', 10, 4, 1)
  with pytest.raises(ValueError, match='unknown sampling mode'):
    sampling.multi_clip_indices(10, 4, 1, 2, mode='tsn')
  with pytest.raises(ValueError, match='num_frames'):
    sampling.dense_indices(0, 4, 1)
  with pytest.raises(ValueError, match='stride'):
    sampling.sample_indices('dense', 10, 4, 0)
  with pytest.raises(ValueError, match='clip_len'):
    sampling.uniform_indices(10, 2.5)
  with pytest.raises(TypeError, match='Generator'):
    sampling.dense_indices(10, 4, 1, rng=3)
