"""Detectors, saliency models and external imports on real frames of the tiny dataset."""
import json
import os

import cv2
import numpy as np
import pytest

from halluc_jax.data import video
from halluc_jax.descriptors import odf
from halluc_jax.descriptors.sources import LABEL_INDEX, LABEL_SPACE, detectors, external, saliency
from halluc_jax.descriptors.sources import shapes


def _videos(root, split='train'):
  with open(os.path.join(root, 'metadata.jsonl')) as f:
    metas = [json.loads(line) for line in f]
  return [m for m in metas if split is None or m['split'] == split]


def _frames(root, meta, count=8):
  indices = np.unique(np.linspace(0, meta['num_frames'] - 1, count).round().astype(int))
  return indices, video.read_frames(os.path.join(root, meta['path']), indices)


def _check_detections(dets, indices, allowed_ids, max_boxes, threshold):
  assert len(dets.boxes) == len(dets.scores) == len(dets.class_ids) == len(dets.frame_index)
  if not len(dets):
    return
  boxes = np.asarray(dets.boxes)
  assert boxes.min() >= 0 and boxes.max() <= 1
  assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
  assert np.all(dets.scores >= threshold) and np.all(dets.scores <= 1)
  assert set(np.asarray(dets.class_ids).tolist()) <= set(allowed_ids)
  assert set(np.asarray(dets.frame_index).tolist()) <= set(indices.tolist())
  assert np.bincount(dets.frame_index).max() <= max_boxes
  if dets.class_scores is not None:
    np.testing.assert_allclose(dets.class_scores.sum(axis=1), 1.0, rtol=1e-5)


def _iou(a, b):
  inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / max(union, 1e-9)


def test_shape_detector_finds_the_actors(tiny_dataset):
  det = detectors.build_detector('shape')
  hits = total = 0
  for meta in _videos(tiny_dataset, split=None):  # 24 clips, ~280 actor boxes
    indices, frames = _frames(tiny_dataset, meta)
    dets = det(frames, indices)
    shape_ids = [LABEL_INDEX[n] for n in ('circle', 'triangle', 'quadrilateral', 'polygon',
                                          'star', 'other_shape')]
    _check_detections(dets, indices, shape_ids, 20, 0.3)
    side = meta['size']
    for t in indices:
      found = [(b[1] * side, b[0] * side, b[3] * side, b[2] * side)
               for b in dets.boxes[dets.frame_index == t]]
      for obj in meta['objects']:
        box = obj['boxes'][t]
        if obj['role'] == 'actor' and box is not None:
          total += 1
          hits += any(_iou(f, box) >= 0.3 for f in found)
  assert total > 200
  assert hits / total >= 0.6, f'actor found on {hits}/{total} frames'  # measured 0.74 (48 px)


def test_shape_classes_of_clean_drawings():
  frame = np.full((96, 96, 3), 128, np.uint8)
  cv2.circle(frame, (25, 25), 14, (255, 0, 0), -1)
  cv2.fillPoly(frame, [np.array([[60, 10], [90, 40], [60, 40]], np.int32)], (0, 255, 0))
  cv2.rectangle(frame, (10, 60), (40, 88), (0, 0, 255), -1)
  dets = shapes.ShapeDetector(segmentation='edges')(frame[None], [0])
  names = sorted(LABEL_SPACE[i] for i in dets.class_ids)
  assert names == ['circle', 'quadrilateral', 'triangle']


def test_hog_boxes_are_people_shaped(tiny_dataset):
  meta = _videos(tiny_dataset)[0]
  indices, frames = _frames(tiny_dataset, meta, 3)
  det = detectors.build_detector('hog', hit_threshold=-2.0, score_threshold=0.0, max_boxes=5)
  dets = det(frames, indices)
  _check_detections(dets, indices, [LABEL_INDEX['person']], 5, 0.0)
  assert len(dets) > 0  # a negative SVM threshold forces hits on clutter
  heights = (dets.boxes[:, 2] - dets.boxes[:, 0]) * frames.shape[1]
  widths = (dets.boxes[:, 3] - dets.boxes[:, 1]) * frames.shape[2]
  uncropped = np.all((dets.boxes > 0) & (dets.boxes < 1), axis=1)  # not clipped on any side
  np.testing.assert_allclose(heights[uncropped] / widths[uncropped], 2.0, rtol=0.1)  # 64x128


def test_haar_loads_three_cascades_and_scales_boxes(tiny_dataset):
  meta = _videos(tiny_dataset)[1]
  indices, frames = _frames(tiny_dataset, meta, 4)
  det = detectors.build_detector('haar', min_neighbors=0, score_threshold=0.0)
  assert set(det.paths) == {'face', 'upper_body', 'full_body'}
  dets = det(frames, indices)
  ids = [LABEL_INDEX[n] for n in ('face', 'upper_body', 'full_body')]
  _check_detections(dets, indices, ids, 20, 0.0)
  faces = dets.class_ids == LABEL_INDEX['face']
  if faces.any():  # the face cascade's window is square
    h = (dets.boxes[faces, 2] - dets.boxes[faces, 0]) * frames.shape[1]
    w = (dets.boxes[faces, 3] - dets.boxes[faces, 1]) * frames.shape[2]
    np.testing.assert_allclose(h, w, atol=1.5)


def test_mser_blobs(tiny_dataset):
  found = 0
  for meta in _videos(tiny_dataset)[:4]:  # some low-contrast clips hold no stable region
    indices, frames = _frames(tiny_dataset, meta, 4)
    dets = detectors.build_detector('mser')(frames, indices)
    _check_detections(dets, indices, [LABEL_INDEX['blob']], 20, 0.3)
    found += len(dets)
  assert found > 0


def test_bad_frames_are_refused():
  with pytest.raises(ValueError, match='uint8 frames'):
    detectors.build_detector('mser')(np.zeros((2, 8, 8, 3), np.float32), [0, 1])
  with pytest.raises(ValueError, match='Unknown detector'):
    detectors.build_detector('yolo')


@pytest.mark.parametrize('kind', ['spectral', 'fine_grained'])
def test_static_saliency_maps(tiny_dataset, kind):
  meta = _videos(tiny_dataset)[0]
  _, frames = _frames(tiny_dataset, meta, 5)
  maps = saliency.build_saliency(kind)(frames)
  assert maps.shape == frames.shape[:3] and maps.dtype == np.float32
  assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1.0)
  assert np.std(maps) > 0.01


def test_motion_saliency_highlights_moving_actors(tiny_dataset):
  inside, outside = [], []
  for meta in _videos(tiny_dataset)[:6]:
    path = os.path.join(tiny_dataset, meta['path'])
    frames = video.read_frames(path, np.arange(meta['num_frames']))
    wanted = np.arange(4, meta['num_frames'], 3)
    chunks = [(0, frames[:7]), (7, frames[7:])]  # consecutive chunks, as extraction feeds them
    maps = saliency.build_saliency('motion')(chunks, wanted)
    assert maps.shape == (len(wanted),) + frames.shape[1:3]
    assert maps.min() >= 0 and maps.max() <= 1
    for m, t in zip(maps, wanted):
      mask = np.zeros(m.shape, bool)
      for obj in meta['objects']:
        if obj['role'] == 'actor' and obj['boxes'][t] is not None:
          x0, y0, x1, y1 = (int(round(v)) for v in obj['boxes'][t])
          mask[y0:y1, x0:x1] = True
      if mask.any() and (~mask).any():
        inside.append(m[mask].mean())
        outside.append(m[~mask].mean())
  assert np.mean(inside) > 1.5 * np.mean(outside)


def _example_dets():
  return odf.Detections(
      frame_index=np.array([0, 0, 7]), boxes=np.array([[.1, .2, .5, .6], [0, 0, 1, 1],
                                                       [.3, .3, .4, .45]]),
      scores=np.array([.9, .5, .75]), class_ids=np.array([1, 170, 3]),
      class_scores=np.array([[.5, .5, 0], [0, 0, 1], [.2, .3, .5]]))


def _assert_same(a, b):
  for field in ('frame_index', 'boxes', 'scores', 'class_ids'):
    np.testing.assert_allclose(getattr(a, field), getattr(b, field))
  if a.class_scores is not None:
    np.testing.assert_allclose(a.class_scores, b.class_scores)


@pytest.mark.parametrize('layout', ['dir', 'jsonl', 'json_list', 'csv'])
def test_external_detections_round_trip(tmp_path, layout):
  dets, other = _example_dets(), _example_dets()
  objs = [external.detections_to_json('train/v1', 10, dets, 'frcnn'),
          external.detections_to_json('v2', 20, other, 'frcnn')]
  class_dim = 3
  if layout == 'dir':
    path = tmp_path / 'dets'
    (path / 'train').mkdir(parents=True)
    (path / 'train' / 'v1.json').write_text(json.dumps(objs[0]))
    (path / 'v2.json').write_text(json.dumps(objs[1]))
  elif layout == 'jsonl':
    path = tmp_path / 'dets.jsonl'
    path.write_text('\n'.join(json.dumps(o) for o in objs))
  elif layout == 'json_list':
    path = tmp_path / 'dets.json'
    path.write_text(json.dumps(objs))
  else:
    path, class_dim = tmp_path / 'dets.csv', 0
    rows = [','.join(external.CSV_COLUMNS)]
    for o in objs:
      for fr in o['frames']:
        for box, cid, score in zip(fr['boxes'], fr['class_ids'], fr['scores']):
          rows.append(','.join(str(v) for v in [o['video_id'], o['num_frames'], 'frcnn',
                                                 fr['frame'], *box, cid, score]))
    path.write_text('\n'.join(rows) + '\n')
    dets = odf.Detections(dets.frame_index, dets.boxes, dets.scores, dets.class_ids)
  source = external.ExternalDetections(str(path), label_space=171, class_score_dim=class_dim)
  num_frames, got = source.get('train/v1')
  assert num_frames == 10
  _assert_same(dets, got)
  assert source.get('v2')[0] == 20 and source.get('nope') is None
  vec, present = odf.odf_descriptor(got, num_frames, 171, class_dim)
  want, _ = odf.odf_descriptor(dets, 10, 171, class_dim)
  assert present
  np.testing.assert_allclose(vec, want)


def test_external_detections_documented_example(tmp_path):
  path = tmp_path / 'abc.json'
  path.write_text('''{"video_id": "abc", "num_frames": 250, "detector": "faster_rcnn_nas_coco",
    "frames": [{"frame": 0, "boxes": [[0.10, 0.20, 0.55, 0.60]], "class_ids": [1],
                "scores": [0.93]}, {"frame": 3, "boxes": [], "class_ids": [], "scores": []}]}''')
  num_frames, dets = external.ExternalDetections(str(path), label_space=171).get('abc')
  assert num_frames == 250 and len(dets) == 1 and dets.class_ids.tolist() == [1]


@pytest.mark.parametrize('mutate, message', [
    (lambda o: o.pop('num_frames'), "missing key 'num_frames'"),
    (lambda o: o['frames'][0].update(boxes=[[0.1, 0.2, 1.5, 0.6]] * 2), 'normalised'),
    (lambda o: o['frames'][0].update(scores=[0.5]), '2 boxes but 2 "class_ids" and 1 "scores"'),
    (lambda o: o['frames'][0].update(frame=99), 'not an int in'),
    (lambda o: o['frames'][0].update(class_ids=[1, 400]), 'label space'),
    (lambda o: o['frames'][0].update(class_scores=[[1, 0]]), 'class_scores'),
])
def test_malformed_external_detections(tmp_path, mutate, message):
  obj = external.detections_to_json('v', 10, _example_dets())
  mutate(obj)
  path = tmp_path / 'dets.json'
  path.write_text(json.dumps(obj))
  with pytest.raises(external.ExternalFormatError, match='dets.json') as err:
    external.ExternalDetections(str(path), label_space=171, class_score_dim=3).get('v')
  assert message in str(err.value)


def test_invalid_json_names_the_file(tmp_path):
  path = tmp_path / 'broken.jsonl'
  path.write_text('{"video_id": "v", ')
  with pytest.raises(external.ExternalFormatError, match='broken.jsonl'):
    external.ExternalDetections(str(path)).get('v')


def test_external_saliency_npz_and_png_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  maps = rng.uniform(0, 1, (12, 20, 30)).astype(np.float32)
  np.savez(tmp_path / 'a.npz', saliency=maps, frames=np.arange(12))
  folder = tmp_path / 'b'
  folder.mkdir()
  quantised = np.round(maps * 255).astype(np.uint8)
  for j, m in enumerate(quantised):  # unpadded numbers: the order must be numeric, not lexical
    cv2.imwrite(str(folder / f'frame_{j}.png'), m)
  source = external.ExternalSaliency(str(tmp_path))
  np.testing.assert_array_equal(source.get('a'), maps)
  np.testing.assert_allclose(source.get('b'), quantised / 255.0, atol=1e-6)
  assert source.get('c') is None


def test_malformed_external_saliency(tmp_path):
  np.savez(tmp_path / 'flat.npz', saliency=np.zeros((5, 5)))
  np.savez(tmp_path / 'two.npz', a=np.zeros((1, 5, 5)), b=np.zeros((1, 5, 5)))
  (tmp_path / 'junk.npz').write_text('not a zip')
  np.savez(tmp_path / 'nan.npz', saliency=np.full((1, 4, 4), np.nan))
  source = external.ExternalSaliency(str(tmp_path))
  for vid, message in [('flat', r'\[J >= 1'), ('two', 'single array'), ('junk', 'readable'),
                       ('nan', 'NaN')]:
    with pytest.raises(external.ExternalFormatError, match=message) as err:
      source.get(vid)
    assert f'{vid}.npz' in str(err.value)


def test_external_features_round_trip_and_descriptors(tmp_path):
  """Skeleton / audio / BoW features from files (external_feat): [J, D] rows -> multi-moment,
  [D] -> as it is; missing -> no target; decoding no video."""
  from halluc_jax.descriptors import moments  # pylint: disable=g-import-not-at-top
  from halluc_jax.targets import extract_video  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  skeleton = rng.normal(size=(20, 6))
  np.save(tmp_path / 'v1.npy', skeleton)
  np.savez(tmp_path / 'v2.npz', features=skeleton[:7], frames=np.arange(7))
  bow_dir = tmp_path / 'bow'
  os.makedirs(bow_dir)
  histogram = rng.random(10)
  np.save(bow_dir / 'v1.npy', histogram)
  source = external.ExternalFeatures(str(tmp_path))
  np.testing.assert_array_equal(source.get('v1'), skeleton)
  np.testing.assert_array_equal(source.get('v2'), skeleton[:7])
  assert source.get('absent') is None
  spec = {'group': 'gsf', 'source': 'external_feat', 'params': {'path': str(tmp_path)},
          'd': 16, 'num_sketches': 2, 'seed': 5, 'n_eig': 1, 'eig_sign': 'time',
          'moments': 'mean,eig'}
  bow = dict(spec, group='bfo', params={'path': str(bow_dir)})
  extract_video.validate_stream('gsf', spec)
  out = extract_video.compute_streams('v1', '/no/such/video.mp4', {'gsf': spec, 'bow': bow})
  want = moments.select_blocks(
      moments.multi_moment(skeleton, n_eig=1, times=np.arange(20), eig_sign='time'), 1,
      moments.parse_blocks('mean,eig'))
  np.testing.assert_allclose(out['gsf']['target'], extract_video.sketch_target(want, spec))
  assert out['gsf']['raw_dim'] == 6 * 2 and out['gsf']['target'].shape == (32,)
  np.testing.assert_allclose(out['bow']['target'], extract_video.sketch_target(histogram, bow))
  missing = extract_video.compute_streams('v9', '/no/such/video.mp4', {'gsf': spec})
  assert missing['gsf']['target'] is None and missing['gsf']['stats'] == {'missing': 1}
  with pytest.raises(ValueError, match="group 'gsf' takes"):
    extract_video.validate_stream('gsf', dict(spec, source='flow'))


def test_malformed_external_features_name_the_file(tmp_path):
  np.save(tmp_path / 'cube.npy', np.zeros((2, 3, 4)))
  np.save(tmp_path / 'nan.npy', np.array([[1.0, np.nan]]))
  np.savez(tmp_path / 'two.npz', a=np.zeros(3), b=np.zeros(3))
  np.save(tmp_path / 'wide.npy', np.zeros((4, 5)))
  np.save(tmp_path / 'narrow.npy', np.zeros((4, 3)))
  source = external.ExternalFeatures(str(tmp_path))
  for video_id, message in (('cube', r'\[J, D\] or \[D\]'), ('nan', 'non-finite'),
                            ('two', 'a single array')):
    with pytest.raises(external.ExternalFormatError, match=message) as info:
      source.get(video_id)
    assert video_id in str(info.value)
  source.get('wide')
  with pytest.raises(external.ExternalFormatError, match='D = 3, but earlier videos'):
    source.get('narrow')
  with pytest.raises(FileNotFoundError, match='feature directory'):
    external.ExternalFeatures(str(tmp_path / 'none'))


def _video_with_tone(path, seconds=1.0, rate=16000, freq=440.0, with_audio=True):
  """An mkv with a few video frames and (optionally) a mono sine soundtrack."""
  import av  # pylint: disable=g-import-not-at-top
  with av.open(str(path), 'w') as out:
    v = out.add_stream('mpeg4', rate=10)
    v.width, v.height, v.pix_fmt = 32, 32, 'yuv420p'
    a = out.add_stream('pcm_s16le', rate=rate, layout='mono') if with_audio else None
    for i in range(int(10 * seconds)):
      frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i, np.uint8), format='rgb24')
      out.mux(v.encode(frame))
    out.mux(v.encode(None))
    if a is not None:
      t = np.arange(int(seconds * rate)) / rate
      samples = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)[None]
      frame = av.AudioFrame.from_ndarray(samples, format='s16', layout='mono')
      frame.sample_rate, frame.pts = rate, 0
      out.mux(a.encode(frame))
      out.mux(a.encode(None))
  return str(path)


def test_log_mel_matches_a_direct_loop_and_filters_are_triangles():
  from halluc_jax.descriptors.sources import audio  # pylint: disable=g-import-not-at-top
  fb = audio.mel_filterbank(16000, 400, 40)
  assert fb.shape == (40, 201) and np.all(fb >= 0) and fb.max() <= 1.0
  assert np.all(fb.max(1) > 0.5)  # no filter falls between two FFT bins (every band sees one)
  assert np.all(np.diff(np.argmax(fb, axis=1)) >= 0)  # peaks rise with the band
  rng = np.random.default_rng(0)
  signal = rng.normal(size=2000)
  got = audio.log_mel(signal, 16000)
  window = np.hanning(400)
  want = [np.log(fb @ np.abs(np.fft.rfft(signal[s:s + 400] * window)) ** 2 + 1e-6)
          for s in range(0, 2000 - 400 + 1, 160)]
  np.testing.assert_allclose(got, np.stack(want), rtol=1e-10)
  assert audio.log_mel(signal[:100], 16000).shape == (0, 40)


def test_audio_stream_from_the_soundtrack_and_none_without_one(tmp_path):
  from halluc_jax.descriptors.sources import audio  # pylint: disable=g-import-not-at-top
  from halluc_jax.targets import extract_video  # pylint: disable=g-import-not-at-top
  with_tone = _video_with_tone(tmp_path / 'tone.mkv', freq=1000.0)
  silent = _video_with_tone(tmp_path / 'silent.mkv', with_audio=False)
  frames = audio.LogMelAudio()(with_tone)
  assert frames.shape == (1 + (16000 - 400) // 160, 40)
  peak = np.argmax(frames.mean(0))  # a 1 kHz tone: the mel band holding 1 kHz is the loudest
  centres = np.argmax(audio.mel_filterbank(16000, 400, 40), axis=1) * 16000 / 400
  assert abs(centres[peak] - 1000.0) < 150
  assert audio.LogMelAudio()(silent) is None
  spec = {'group': 'af', 'source': 'audio', 'params': {}, 'd': 16, 'num_sketches': 1,
          'seed': 3, 'n_eig': 1, 'eig_sign': 'time', 'moments': 'mean,eig'}
  extract_video.validate_stream('af', spec)
  out = extract_video.compute_streams('tone', with_tone, {'af': spec})
  assert out['af']['target'].shape == (16,) and out['af']['raw_dim'] == 80
  assert extract_video.compute_streams('silent', silent, {'af': spec})['af']['target'] is None
  (tmp_path / 'junk.mkv').write_bytes(b'not a video')
  from halluc_jax.data import video as video_io  # pylint: disable=g-import-not-at-top
  with pytest.raises(video_io.VideoReadError, match='soundtrack'):
    extract_video.compute_streams('junk', str(tmp_path / 'junk.mkv'), {'af': spec})
