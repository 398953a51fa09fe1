"""Imports detections and saliency maps computed elsewhere (Faster R-CNN, MNL, ACLNet, ...).

Detections (one ODF stream per detector). Per video, a JSON object:

  {"video_id": "abc_000010_000020",        # the id the annotation reader gives the video
   "num_frames": 250,                       # tau: frames in the video (box times = frame / (tau-1))
   "detector": "faster_rcnn_nas_coco",      # optional unless a file mixes detectors
   "frames": [
     {"frame": 0,                           # 0-based frame index, < num_frames
      "boxes": [[0.10, 0.20, 0.55, 0.60]],  # [ymin, xmin, ymax, xmax], normalised to [0, 1]
      "class_ids": [1],                     # ints in [0, label_space)
      "scores": [0.93],                     # detector confidences in [0, 1]
      "class_scores": [[0.0, 0.7, ...]]}]}  # optional [boxes][C], e.g. ImageNet scores of crops

stored as any of: a directory with one `<video_id>.json` per video (ids with '/' are sub-paths),
a `.jsonl` file with one object per line, a `.json` file holding one object or a list, or a
`.csv` file with header `video_id,num_frames,detector,frame,ymin,xmin,ymax,xmax,class_id,score`
(one row per box; no class scores). Frames without boxes may be omitted or have empty lists.
Boxes are kept as given: apply your score threshold / top-k before export (docs/method.md §9.16
suggests score >= 0.3 and <= 20 boxes per frame).

Saliency maps (one SDF stream per model). Per video, either `<dir>/<video_id>.npz` holding a
float array [J, H, W] (key 'saliency', or the file's only array; an int array 'frames' [J] of
frame indices may sit beside it and is ignored), or a folder `<dir>/<video_id>/` of per-frame
grey images (png, jpg, bmp, tif; 8 or 16 bit), ordered by the number in the file name (e.g.
000012.png), else by name. Any non-negative scale works (SDF normalises per frame).

Features (one stream per feature kind: skeleton GSF, audio AF, pre-computed BoW / FV, ...).
Per video `<dir>/<video_id>.npy`, or `.npz` with an array 'features' (or the file's only array):
float [J, D], J local observations of D values in time order (skeleton joints of a frame, audio
frames, trajectory descriptors), summarised like the built-in streams by the multi-moment
descriptor of its rows; or float [D], a video-level vector (a BoW histogram, an FV half) used as
the raw descriptor as it is. Every video of a stream must have the same D.

A video missing from the source gives None (no target, masked downstream); a malformed file
raises `ExternalFormatError` naming the file and the offending key.
"""
import csv
import json
import os
import re

import cv2
import numpy as np

from halluc_jax.descriptors.odf import Detections

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
CSV_COLUMNS = ('video_id', 'num_frames', 'detector', 'frame', 'ymin', 'xmin', 'ymax', 'xmax',
               'class_id', 'score')


class ExternalFormatError(ValueError):
  """An external detection or saliency file does not follow the documented format."""


def _fail(where, message):
  return ExternalFormatError(f'{where}: {message}')


def parse_video_detections(obj, where, label_space=None, class_score_dim=0):
  """Validates one video's JSON object; returns (video_id, detector, num_frames, Detections)."""
  if not isinstance(obj, dict):
    raise _fail(where, f'expected a JSON object per video, got {type(obj).__name__}.')
  for key in ('video_id', 'num_frames', 'frames'):
    if key not in obj:
      raise _fail(where, f'missing key {key!r}.')
  video_id, num_frames = str(obj['video_id']), obj['num_frames']
  where = f'{where} (video {video_id!r})'
  if not isinstance(num_frames, int) or num_frames < 1:
    raise _fail(where, f'"num_frames" must be a positive int, got {num_frames!r}.')
  if not isinstance(obj['frames'], list):
    raise _fail(where, f'"frames" must be a list, got {type(obj["frames"]).__name__}.')
  cols = {'frame': [], 'boxes': [], 'class_ids': [], 'scores': [], 'class_scores': []}
  for j, fr in enumerate(obj['frames']):
    at = f'{where} frames[{j}]'
    if not isinstance(fr, dict) or 'frame' not in fr:
      raise _fail(at, 'each frame must be an object with a "frame" index.')
    try:
      boxes = np.asarray(fr.get('boxes', []), np.float64)
      ids = np.asarray(fr.get('class_ids', []), np.float64)
      scores = np.asarray(fr.get('scores', []), np.float64)
      frame = fr['frame']
      frame_ok = float(frame) == int(frame) and 0 <= int(frame) < num_frames
    except (TypeError, ValueError) as e:
      raise _fail(at, f'non-numeric or ragged "frame", "boxes", "class_ids" or "scores" '
                      f'({e}).') from None
    boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
      raise _fail(at, f'"boxes" must be a list of [ymin, xmin, ymax, xmax], got shape '
                      f'{boxes.shape}.')
    k = len(boxes)
    if ids.shape != (k,) or scores.shape != (k,):
      raise _fail(at, f'{k} boxes but {ids.size} "class_ids" and {scores.size} "scores".')
    if k and not np.all(np.mod(ids, 1) == 0):
      raise _fail(at, f'"class_ids" must be integers, got {ids.tolist()[:5]}.')
    if not frame_ok:
      raise _fail(at, f'"frame" {frame!r} is not an int in [0, num_frames={num_frames}).')
    if k and (not np.all(np.isfinite(boxes)) or boxes.min() < 0 or boxes.max() > 1
              or np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1])):
      raise _fail(at, '"boxes" must be normalised [ymin, xmin, ymax, xmax] in [0, 1] with '
                      'ymin <= ymax and xmin <= xmax.')
    if k and (not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1):
      raise _fail(at, '"scores" must lie in [0, 1].')
    if label_space and k and (ids.min() < 0 or ids.max() >= label_space):
      raise _fail(at, f'"class_ids" outside the label space [0, {label_space}).')
    if class_score_dim:
      try:
        cs = np.asarray(fr.get('class_scores', []), np.float64)
      except (TypeError, ValueError):
        raise _fail(at, '"class_scores" is ragged or non-numeric.') from None
      if cs.size != k * class_score_dim or (k and cs.shape != (k, class_score_dim)):
        raise _fail(at, f'"class_scores" must be [{k}][{class_score_dim}], got {cs.shape}.')
      cols['class_scores'].append(cs.reshape(k, class_score_dim))
    cols['frame'].append(np.full(k, int(frame)))
    cols['boxes'].append(boxes)
    cols['class_ids'].append(ids.astype(np.int64).reshape(k))
    cols['scores'].append(scores)
  if not cols['frame']:
    return video_id, obj.get('detector'), num_frames, Detections.empty(class_score_dim)
  dets = Detections(
      np.concatenate(cols['frame']).astype(np.int64), np.concatenate(cols['boxes']),
      np.concatenate(cols['scores']), np.concatenate(cols['class_ids']),
      np.concatenate(cols['class_scores']) if class_score_dim else None)
  return video_id, obj.get('detector'), num_frames, dets


def detections_to_json(video_id, num_frames, dets, detector=None):
  """The documented JSON object of one video's Detections (for exporting your own detector)."""
  frames = []
  for t in np.unique(np.asarray(dets.frame_index)):
    sel = np.flatnonzero(np.asarray(dets.frame_index) == t)
    frame = {'frame': int(t), 'boxes': np.asarray(dets.boxes)[sel].tolist(),
             'class_ids': np.asarray(dets.class_ids)[sel].astype(int).tolist(),
             'scores': np.asarray(dets.scores)[sel].tolist()}
    if dets.class_scores is not None:
      frame['class_scores'] = np.asarray(dets.class_scores)[sel].tolist()
    frames.append(frame)
  obj = {'video_id': str(video_id), 'num_frames': int(num_frames), 'frames': frames}
  if detector is not None:
    obj['detector'] = detector
  return obj


def _read_csv_objects(path):
  """Groups the rows of a detection CSV into per-(video, detector) JSON-like objects."""
  objects = {}
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
      raise _fail(path, f'missing CSV columns {missing}; expected {",".join(CSV_COLUMNS)}.')
    for line, row in enumerate(reader, start=2):
      try:
        key = (row['video_id'], row['detector'] or None)
        obj = objects.setdefault(key, {'video_id': key[0], 'detector': key[1],
                                       'num_frames': int(row['num_frames']), 'frames': []})
        obj['frames'].append({'frame': int(row['frame']), 'class_ids': [int(row['class_id'])],
                              'scores': [float(row['score'])],
                              'boxes': [[float(row[c]) for c in ('ymin', 'xmin', 'ymax', 'xmax')]]})
      except ValueError as e:
        raise _fail(f'{path} line {line}', f'bad number ({e}).') from None
  return list(objects.values())


def _read_json_objects(path):
  with open(path) as f:
    text = f.read()
  try:
    if path.endswith('.jsonl'):
      return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise _fail(path, f'invalid JSON ({e}).') from None
  return data if isinstance(data, list) else [data]


class ExternalDetections:
  """Per-video detections of one external detector, read from `path` (see module docstring)."""

  def __init__(self, path, detector=None, label_space=None, class_score_dim=0):
    if not os.path.exists(path):
      raise FileNotFoundError(f'External detections not found: {path!r}.')
    self.path, self.detector = path, detector
    self.label_space, self.class_score_dim = label_space, int(class_score_dim or 0)
    self._table = None  # {video_id: (num_frames, Detections)}, for single-file sources

  def params(self):
    return {'path': self.path, 'detector': self.detector, 'label_space': self.label_space,
            'class_score_dim': self.class_score_dim}

  def _parse(self, obj, where):
    return parse_video_detections(obj, where, self.label_space, self.class_score_dim)

  def _load_table(self):
    objects = (_read_csv_objects(self.path) if self.path.endswith('.csv')
               else _read_json_objects(self.path))
    table = {}
    for i, obj in enumerate(objects):
      video_id, detector, num_frames, dets = self._parse(obj, f'{self.path} [{i}]')
      if self.detector is not None and detector != self.detector:
        continue
      if video_id in table:
        raise _fail(self.path, f'video {video_id!r} appears twice; set the stream\'s "detector".')
      table[video_id] = (num_frames, dets)
    return table

  def get(self, video_id):
    """(num_frames, Detections) of a video, or None when the source has none for it."""
    if os.path.isdir(self.path):
      file = os.path.join(self.path, f'{video_id}.json')
      if not os.path.isfile(file):
        return None
      objects = [o for o in _read_json_objects(file)
                 if self.detector is None or o.get('detector') == self.detector]
      if len(objects) != 1:
        raise _fail(file, f'expected one object for detector {self.detector!r}, '
                          f'found {len(objects)}.')
      found_id, _, num_frames, dets = self._parse(objects[0], file)
      if found_id != str(video_id):
        raise _fail(file, f'"video_id" is {found_id!r}, expected {str(video_id)!r}.')
      return num_frames, dets
    if self._table is None:
      self._table = self._load_table()
    return self._table.get(str(video_id))


def _frame_number(name):
  digits = re.findall(r'\d+', os.path.splitext(name)[0])
  return (int(digits[-1]), name) if digits else (float('inf'), name)


def _read_image_maps(folder):
  names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)),
                 key=_frame_number)
  if not names:
    raise _fail(folder, f'no saliency images ({", ".join(IMAGE_EXTENSIONS)}).')
  maps = []
  for name in names:
    image = cv2.imread(os.path.join(folder, name), cv2.IMREAD_UNCHANGED)
    if image is None:
      raise _fail(os.path.join(folder, name), 'cannot decode the image.')
    if image.ndim == 3:
      image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype == np.uint8 else 1.0
    maps.append(image.astype(np.float32) / scale)
  if len({m.shape for m in maps}) != 1:
    raise _fail(folder, f'saliency images differ in size: {sorted({m.shape for m in maps})}.')
  return np.stack(maps)


def _read_npz_maps(path):
  try:
    with np.load(path) as data:
      keys = [k for k in data.files if k != 'frames']
      key = 'saliency' if 'saliency' in data.files else keys[0] if len(keys) == 1 else None
      if key is None:
        raise _fail(path, f'expected an array "saliency" (or a single array), found {data.files}.')
      maps = np.asarray(data[key], np.float32)
  except (OSError, ValueError) as e:
    if isinstance(e, ExternalFormatError):
      raise
    raise _fail(path, f'not a readable .npz ({e}).') from None
  if maps.ndim != 3 or maps.shape[0] < 1 or min(maps.shape[1:]) < 2:
    raise _fail(path, f'array {key!r} must be [J >= 1, H >= 2, W >= 2], got {maps.shape}.')
  return maps


class ExternalSaliency:
  """Per-video saliency maps of one external model, from `<dir>/<video_id>.npz` or folders."""

  def __init__(self, path):
    if not os.path.isdir(path):
      raise FileNotFoundError(f'External saliency directory not found: {path!r}.')
    self.path = path

  def params(self):
    return {'path': self.path}

  def get(self, video_id):
    """float32 maps [J, H, W] of a video, or None when the source has none for it."""
    npz, folder = os.path.join(self.path, f'{video_id}.npz'), os.path.join(self.path, str(video_id))
    if os.path.isfile(npz):
      maps = _read_npz_maps(npz)
    elif os.path.isdir(folder):
      maps = _read_image_maps(folder)
    else:
      return None
    if not np.all(np.isfinite(maps)):
      raise _fail(npz if os.path.isfile(npz) else folder, 'saliency maps hold NaN or inf.')
    return maps


def _read_feature_file(path):
  try:
    if path.endswith('.npy'):
      features = np.load(path, allow_pickle=False)
      key = 'array'
    else:
      with np.load(path, allow_pickle=False) as data:
        key = ('features' if 'features' in data.files
               else data.files[0] if len(data.files) == 1 else None)
        if key is None:
          raise _fail(path, f'expected an array "features" (or a single array), found '
                            f'{data.files}.')
        features = data[key]
  except (OSError, ValueError) as e:
    if isinstance(e, ExternalFormatError):
      raise
    raise _fail(path, f'not a readable .npy / .npz ({e}).') from None
  if features.ndim not in (1, 2) or features.size == 0 or not np.issubdtype(features.dtype,
                                                                           np.number):
    raise _fail(path, f'array {key!r} must be numeric [J, D] or [D], got {features.dtype} '
                      f'{features.shape}.')
  features = np.asarray(features, np.float64)
  if not np.all(np.isfinite(features)):
    raise _fail(path, f'array {key!r} has non-finite values.')
  return features


class ExternalFeatures:
  """Per-video feature arrays of one external extractor, from `<dir>/<video_id>.npy|.npz`."""

  def __init__(self, path):
    if not os.path.isdir(path):
      raise FileNotFoundError(f'External feature directory not found: {path!r}.')
    self.path = path
    self._dim = None

  def params(self):
    return {'path': self.path}

  def get(self, video_id):
    """float64 [J, D] or [D] of a video, or None when the source has none for it."""
    for ext in ('.npy', '.npz'):
      path = os.path.join(self.path, f'{video_id}{ext}')
      if os.path.isfile(path):
        features = _read_feature_file(path)
        dim = features.shape[-1]
        if self._dim is not None and dim != self._dim:
          raise _fail(path, f'D = {dim}, but earlier videos of this source have D = {self._dim}.')
        self._dim = dim
        return features
    return None
