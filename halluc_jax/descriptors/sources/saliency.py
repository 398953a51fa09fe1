"""Built-in saliency models from `cv2.saliency`; each is one SDF saliency stream.

* `StaticSaliency('spectral')`: spectral residual (Hou & Zhang, CVPR07), image-level, the
  stand-in for the paper's MNL (SAL1).
* `StaticSaliency('fine_grained')`: centre-surround on an integral image (Montabone & Soto 2010).
* `MotionSaliency`: BinWangApr2014 background model (Wang & Dudek 2014), video-level, the
  stand-in for ACLNet (SAL2). It learns its background from consecutive frames, so it needs a
  warm-up and a consecutive frame stream: see `MotionSaliency.__call__`.

Every model returns float32 maps [J, H, W] in [0, 1] at the frames' resolution.
"""
import cv2
import numpy as np

STATIC_KINDS = ('spectral', 'fine_grained')


def _check_frames(name, frames):
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f'{name}: expected uint8 RGB frames [T, H, W, 3], got {frames.dtype} '
                     f'{frames.shape}.')
  return frames


def _unit_range(saliency_map):
  """Scales a map into [0, 1] by its maximum (maps are non-negative); all-zero stays zero."""
  saliency_map = np.nan_to_num(np.asarray(saliency_map, np.float32), nan=0.0, posinf=0.0)
  saliency_map = np.maximum(saliency_map, 0.0)
  peak = float(saliency_map.max()) if saliency_map.size else 0.0
  return saliency_map / peak if peak > 0 else saliency_map


class StaticSaliency:
  """Image-level saliency, frame by frame ('spectral' or 'fine_grained')."""

  def __init__(self, kind='spectral'):
    if kind not in STATIC_KINDS:
      raise ValueError(f'Unknown static saliency {kind!r}; expected one of {STATIC_KINDS}.')
    self.kind = kind
    self.name = f'saliency_{kind}'
    create = {'spectral': cv2.saliency.StaticSaliencySpectralResidual_create,
              'fine_grained': cv2.saliency.StaticSaliencyFineGrained_create}[kind]
    self._model = create()

  def params(self):
    model = {'spectral': 'StaticSaliencySpectralResidual',
             'fine_grained': 'StaticSaliencyFineGrained'}[self.kind]
    return {'model': f'cv2.saliency.{model}'}

  def __call__(self, frames):
    """Maps float32 [T, H, W] in [0, 1] of RGB uint8 frames [T, H, W, 3]."""
    frames = _check_frames(self.name, frames)
    maps = []
    for frame in frames:
      ok, saliency_map = self._model.computeSaliency(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
      if not ok:
        raise RuntimeError(f'{self.name}: computeSaliency failed on a {frame.shape} frame.')
      maps.append(_unit_range(saliency_map))
    return np.stack(maps) if maps else np.zeros((0,) + frames.shape[1:3], np.float32)


def _ping_pong(frames, length):
  """`length` frames cycling back and forth through `frames`, ending on frames[0].

  Ending where the real stream starts means the model sees no jump cut at the hand-over.
  """
  if len(frames) < 2:
    return np.repeat(frames, length, axis=0)
  cycle = np.concatenate([np.arange(len(frames)), np.arange(len(frames) - 2, 0, -1)])
  return frames[np.resize(cycle, length)[::-1]]


class MotionSaliency:
  """Video-level saliency: the BinWangApr2014 background model, fed consecutive frames.

  The map at frame t is the model's binary foreground after it has seen frames 0..t, smoothed
  by a Gaussian of `blur_frac` x the short side so its gradients are defined. The model marks
  every pixel as moving until it has seen ~50 frames, so it is first warmed up on `warmup`
  frames: the stream's first chunk played forwards and backwards (ping-pong, no jump cuts)
  as often as needed. Short clips (the embedded dataset's are 16-48 frames) need this.
  """
  name = 'saliency_motion'

  def __init__(self, warmup=64, blur_frac=0.02):
    self.warmup, self.blur_frac = int(warmup), float(blur_frac)

  def params(self):
    return {'model': 'cv2.saliency.MotionSaliencyBinWangApr2014', 'warmup': self.warmup,
            'blur_frac': self.blur_frac}

  def _new_model(self, height, width):
    model = cv2.saliency.MotionSaliencyBinWangApr2014_create()
    model.setImagesize(width, height)
    if not model.init():
      raise RuntimeError(f'{self.name}: MotionSaliencyBinWangApr2014.init failed '
                         f'for {width}x{height}.')
    return model

  def __call__(self, frame_chunks, wanted, warmup_frames=None):
    """Maps at the wanted frame indices of a consecutive frame stream.

    Args:
      frame_chunks: iterable of (start_index, uint8 RGB frames [n, H, W, 3]) covering
        consecutive indices from 0 (or from any start) up to max(wanted), in order.
      wanted: sorted frame indices whose maps are returned.
      warmup_frames: optional uint8 [w, H, W, 3] frames fed once before the stream (default:
        `warmup` frames cycled ping-pong from the first chunk).

    Returns:
      float32 [len(wanted), H, W] in [0, 1].
    """
    wanted = [int(t) for t in wanted]
    position = {t: i for i, t in enumerate(wanted)}
    model, maps = None, [None] * len(wanted)
    for start, frames in frame_chunks:
      frames = _check_frames(self.name, frames)
      if model is None:
        model = self._new_model(*frames.shape[1:3])
        sigma = max(0.5, self.blur_frac * min(frames.shape[1:3]))
        warm = _ping_pong(frames, self.warmup) if warmup_frames is None else warmup_frames
        for frame in warm:
          model.computeSaliency(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
      for offset, frame in enumerate(frames):
        ok, binary = model.computeSaliency(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        if not ok:
          raise RuntimeError(f'{self.name}: computeSaliency failed at frame {start + offset}.')
        i = position.get(start + offset)
        if i is not None:
          maps[i] = _unit_range(cv2.GaussianBlur(np.float32(binary), (0, 0), sigma))
    missing = [t for t, m in zip(wanted, maps) if m is None]
    if missing:
      raise ValueError(f'{self.name}: the frame stream never reached frames {missing[:5]}.')
    return np.stack(maps) if maps else np.zeros((0, 1, 1), np.float32)


def build_saliency(kind, **params):
  """A saliency model by kind: 'spectral' | 'fine_grained' | 'motion'."""
  if kind == 'motion':
    return MotionSaliency(**params)
  return StaticSaliency(kind, **params)
