"""Per-element work of the input pipeline: decode, sample and augment one clip.

The callables here run inside grain (threads and spawned worker processes), so they hold only
picklable state: a frozen `ClipSpec`, the split's records and an optional `AuxTargetStore`.
A video that fails to probe or decode (any of DECODE_ERRORS) never raises out of them: the
element gets a zero clip and valid=0, and the failure is logged once per file per process.
Errors after decoding (augmentation) are bugs, not bad input, and do propagate.
"""
import dataclasses
import logging
import threading

import av
import numpy as np

from halluc_jax.data import randaugment
from halluc_jax.data import sampling
from halluc_jax.data import transforms
from halluc_jax.data import video

# What a bad file can raise while probed and read: video.py turns FFmpeg failures into
# VideoReadError; sampling/read_frames raise ValueError on unusable frame counts or indices.
DECODE_ERRORS = (video.VideoReadError, ValueError, OSError, EOFError, av.error.FFmpegError)
_warned_paths = set()  # files whose decode failure this process already logged
_eval_cache = threading.local()  # last decoded eval video of this thread


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """The clip geometry, augmentation and label settings (plain values from config.data)."""
  num_frames: int
  frame_stride: int
  sampling: str
  crop_size: int
  resize_short: int
  crop_area: tuple[float, float]
  aspect_ratio: tuple[float, float]
  flip: bool
  mean: tuple[float, ...]
  std: tuple[float, ...]
  num_classes: int
  multi_label: bool
  eval_clips: int
  eval_crops: int
  randaugment_ops: int = 0  # config.augment.randaugment_ops (0 = off)
  randaugment_magnitude: float = 7.0
  randaugment_mstd: float = 0.5
  rgb_conversion: str = 'swscale'  # config.data.rgb_conversion (frame_rgb.RGB_CONVERSIONS)

  @classmethod
  def from_config(cls, data, augment=None):
    """From config.data and, for RandAugment, config.augment (None: off)."""
    augment = augment or {}
    return cls(num_frames=int(data.num_frames), frame_stride=int(data.frame_stride),
               sampling=str(data.sampling), crop_size=int(data.crop_size),
               resize_short=int(data.resize_short), crop_area=tuple(data.train_crop_area),
               aspect_ratio=tuple(data.train_aspect_ratio), flip=bool(data.flip),
               mean=tuple(data.mean), std=tuple(data.std), num_classes=int(data.num_classes),
               multi_label=bool(data.multi_label), eval_clips=int(data.eval_clips),
               eval_crops=int(data.eval_crops),
               randaugment_ops=int(augment.get('randaugment_ops', 0)),
               randaugment_magnitude=float(augment.get('randaugment_magnitude', 7.0)),
               randaugment_mstd=float(augment.get('randaugment_mstd', 0.5)),
               rgb_conversion=str(data.get('rgb_conversion', 'swscale')))

  @property
  def clip_shape(self):
    return (self.num_frames, self.crop_size, self.crop_size, 3)


def _warn_once(path, error):
  if path not in _warned_paths:
    _warned_paths.add(path)
    logging.warning('Cannot decode %s (%s: %s); its clips are marked valid=0.', path,
                    type(error).__name__, error)


def label_array(label, spec):
  """int32 scalar class index, or float32 [num_classes] multi-hot when multi-label."""
  if spec.multi_label:
    hot = np.zeros((spec.num_classes,), np.float32)
    hot[list(label)] = 1.0
    return hot
  return np.int32(label)


def aux_fields(store, video_id):
  """The batch's auxiliary-target keys for one video ({} without a store, zeros for None)."""
  if store is None:
    return {}
  # Standardised targets come with the coordinates the train split never varies (the same for
  # every row; the uncertainty loss scores those by their squared error, `losses`).
  varies = ({'aux_varies': {k: store.standardizer.varies[k] for k in store.dims}}
            if store.standardizer is not None else {})
  if video_id is None:  # padding row: no targets
    return {'aux': {k: np.zeros((d,), np.float32) for k, d in store.dims.items()},
            'aux_mask': {k: np.float32(0.0) for k in store.dims}, 'aux_bad': np.int32(0),
            **varies}
  targets, masks, num_bad = store.lookup(video_id)
  return {'aux': targets, 'aux_mask': {k: np.float32(v) for k, v in masks.items()},
          'aux_bad': np.int32(num_bad), **varies}


def open_source(path):
  """What the decoder reads for a record's path: the path, or for a packed video (a TFDS
  record, data/datasets/tfds_pack.py) its bytes, fetched here, in the worker that decodes."""
  load = getattr(path, 'load', None)
  return path if load is None else load()


def decode_clip(path, indices, short=None, rgb_conversion='swscale'):
  """uint8 [T, H, W, 3] frames at `indices`, optionally resized to a short side of `short`."""
  # The resize happens inside the colour conversion (video.read_frames), not after it.
  return video.read_frames(path, indices, resize_short=short, rgb_conversion=rgb_conversion)


def augment_train_clip(frames, rng, spec):
  """Random-resized crop (+ optional flip, + optional RandAugment) of uint8 frames, normalised
  to float32."""
  clip = transforms.random_resized_crop(frames, rng, spec.crop_size, spec.crop_area,
                                        spec.aspect_ratio)
  if spec.flip:
    clip = transforms.random_horizontal_flip(clip, rng)
  if spec.randaugment_ops > 0:
    clip = randaugment.rand_augment(clip, rng, spec.randaugment_ops, spec.randaugment_magnitude,
                                    spec.randaugment_mstd)
  return transforms.normalize(clip, spec.mean, spec.std)


class TrainClipLoader:
  """grain random_map callable: (row number, VideoRecord), rng -> one training example."""

  def __init__(self, spec, aux_store=None):
    self.spec = spec
    self.aux_store = aux_store

  def __call__(self, element, rng):
    index, record = element
    spec = self.spec
    try:
      source = open_source(record.path)
      info = video.probe(source)
      first, num_frames = sampling.frame_window(info.num_frames, info.fps, record.start_s,
                                                record.end_s)
      indices = first + sampling.sample_indices(spec.sampling, num_frames, spec.num_frames,
                                                spec.frame_stride, rng)
      frames = decode_clip(source, indices, spec.resize_short, spec.rgb_conversion)
    except DECODE_ERRORS as e:
      _warn_once(record.path, e)
      frames = None
    if frames is None:
      clip, valid = np.zeros(spec.clip_shape, np.float32), 0.0
    else:  # outside the try: a bug in augmentation must surface, not pass as a bad file
      clip, valid = augment_train_clip(frames, rng, spec), 1.0
    return {'video': clip, 'label': label_array(record.label, spec), 'valid': np.float32(valid),
            'video_index': np.int32(index), **aux_fields(self.aux_store, record.video_id)}


def decode_eval_clips(path, spec, start_s=None, end_s=None):
  """uint8 [clips, T, H, W, 3]: the deterministic eval clips of one video (of its segment
  [start_s, end_s) when given), one decode pass."""
  path = open_source(path)
  info = video.probe(path)
  first, num_frames = sampling.frame_window(info.num_frames, info.fps, start_s, end_s)
  indices = first + sampling.multi_clip_indices(num_frames, spec.num_frames, spec.frame_stride,
                                                spec.eval_clips, mode=spec.sampling)
  indices = np.asarray(indices).reshape(spec.eval_clips, spec.num_frames)
  # shared frames decoded once
  frames = decode_clip(path, indices.ravel(), spec.resize_short, spec.rgb_conversion)
  return frames.reshape(indices.shape + frames.shape[1:])


def eval_views(clips, spec):
  """uint8 [clips, crops, T, S, S, 3]: the spatial crops of every eval clip."""
  return np.stack([transforms.spatial_crops(c, spec.crop_size, spec.eval_crops) for c in clips])


class EvalViewLoader:
  """grain map callable: (video row or -1 for padding, clip, crop) -> one eval example.

  Consecutive views of a video fall in the same batch, hence in the same thread, so a
  one-video cache per thread decodes each video once for all its clips x crops.
  """

  def __init__(self, spec, records, aux_store=None):
    self.spec = spec
    self.records = records
    self.aux_store = aux_store

  def _views(self, record):
    # Keyed by the segment too: consecutive records may be segments of one long video.
    key = (record.path, record.start_s, record.end_s)
    if getattr(_eval_cache, 'key', None) != key:
      try:
        clips = decode_eval_clips(record.path, self.spec, record.start_s, record.end_s)
      except DECODE_ERRORS as e:
        _warn_once(record.path, e)
        clips = None
      _eval_cache.views = None if clips is None else eval_views(clips, self.spec)
      _eval_cache.key = key
    return _eval_cache.views

  def __call__(self, view):
    video_index, clip_index, crop_index = view
    spec = self.spec
    clip, valid = np.zeros(spec.clip_shape, np.float32), 0.0
    if video_index < 0:  # padding row of the last batch
      label = label_array((), spec) if spec.multi_label else np.int32(0)
      example = {'video': clip, 'label': label, 'valid': np.float32(0.0),
                 'video_index': np.int32(-1), 'view_index': np.int32(-1)}
      return {**example, **aux_fields(self.aux_store, None)}
    record = self.records[video_index]
    views = self._views(record)
    if views is not None:
      clip = transforms.normalize(views[clip_index, crop_index], spec.mean, spec.std)
      valid = 1.0
    return {'video': clip, 'label': label_array(record.label, spec), 'valid': np.float32(valid),
            'video_index': np.int32(video_index),
            'view_index': np.int32(clip_index * spec.eval_crops + crop_index),
            **aux_fields(self.aux_store, record.video_id)}
