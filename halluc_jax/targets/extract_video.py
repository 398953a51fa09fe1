"""One video -> its hallucination targets: frames, sources, raw descriptors, sketched GT.

A stream is described by a plain dict (one entry of `config.extract.stream`):

  group          'odf' | 'sdf' | 'off' (fusion group; decides the descriptor)
  source         'shape' | 'hog' | 'haar' | 'mser'            (odf, built-in detectors)
                 'spectral' | 'fine_grained' | 'motion'       (sdf, built-in saliency)
                 'flow'                                        (off, dense flow -> HOF/MBH)
                 'external_det' | 'external_sal'              (odf / sdf from files, external.py)
                 'audio'                                      (af: log-mel frames of the
                                                               soundtrack, sources/audio.py)
                 'external_feat'                              (gsf / af / bfo / bow / fv1 / fv2 /
                                                               off: per-video feature arrays
                                                               from files, external.py)
                 'idt'                                        (bow / fv1 / fv2: BoW / FV of
                                                               dense trajectories, with the
                                                               train-fitted codebook of
                                                               idt_fit.py; idt_video.py)
  params         keyword arguments of the source (detector thresholds, flow method, file path...)
  d, num_sketches, seed   target = concat_k sketch_k(PN(l2(psi))), sketch k seeded seed + k
  pn, pn_params  GT power normalisation (SigmE eta=50 by default, docs/method.md §3.3)

Sources are built once per process (`sources_for`). `compute_streams` returns, per stream, the
float32 target [num_sketches * d] and whether it is present (False: no boxes, all-zero maps, or
no external data for the video; such a stream gets no target and is masked downstream).
"""
import av
import cv2
import numpy as np

from halluc_jax.data import video as video_io
from halluc_jax.descriptors import flow as flow_lib
from halluc_jax.descriptors import moments, odf, sdf, target
from halluc_jax.descriptors.sketch import CountSketch
from halluc_jax.descriptors.sources import LABEL_SPACE, audio, detectors, external, saliency
from halluc_jax.targets import idt_video

STATIC_SALIENCY = ('spectral', 'fine_grained')
SOURCES = {'odf': detectors.DETECTOR_KINDS + ('external_det',),
           'sdf': STATIC_SALIENCY + ('motion', 'external_sal'),
           'off': ('flow', 'external_feat'),  # or a flow network's feature from files
           # Skeleton (GSF), audio (AF) and IDT BoW / FV features computed elsewhere ('bfo', or
           # the paper's separate bow / fv1 / fv2 groups).
           'gsf': ('external_feat',), 'af': ('external_feat', 'audio'), 'bfo': ('external_feat',),
           'bow': ('external_feat', 'idt'), 'fv1': ('external_feat', 'idt'),
           'fv2': ('external_feat', 'idt')}
# Sources that need no decoded frames (files, or the soundtrack).
FILE_SOURCES = ('external_det', 'external_sal', 'external_feat', 'audio')
# Sources that decode their own frames (trajectories need consecutive ones, not J samples).
SELF_READING = ('idt',)
# The sources that run here without files (external ones read the user's), in panel order.
BUILT_IN = ('shape', 'hog', 'haar', 'mser', 'spectral', 'fine_grained', 'motion', 'flow')
MOTION_CHUNK = 64  # consecutive frames decoded at once for motion saliency (bounded memory)
_BUILT = {}  # (stream name, repr(spec)) -> source object, per process


def moment_settings(spec):
  """(eig_sign, blocks) of a stream's multi-moment descriptor; the paper's when unset."""
  return (str(spec.get('eig_sign', 'max_entry')),
          moments.parse_blocks(spec.get('moments', moments.MOMENT_BLOCKS)))


def validate_stream(name, spec):
  """Raises ValueError naming the stream when its group/source/sketch settings are invalid."""
  group, source = spec.get('group'), spec.get('source')
  if group not in SOURCES:
    raise ValueError(f'config.extract.stream.{name}.group={group!r}: expected one of '
                     f'{tuple(SOURCES)}.')
  if source not in SOURCES[group]:
    raise ValueError(f'config.extract.stream.{name}.source={source!r}: group {group!r} takes '
                     f'one of {SOURCES[group]}.')
  try:
    eig_sign, _ = moment_settings(spec)
  except ValueError as e:
    raise ValueError(f'config.extract.stream.{name}.moments: {e}') from None
  if eig_sign not in moments.EIG_SIGNS:
    raise ValueError(f'config.extract.stream.{name}.eig_sign={eig_sign!r}: expected '
                     f'one of {moments.EIG_SIGNS}.')
  if int(spec.get('d', 0)) < 1 or int(spec.get('num_sketches', 0)) < 1:
    raise ValueError(f'config.extract.stream.{name}: d and num_sketches must be >= 1.')


def sources_for(name, spec):
  """The (cached) source object of a stream."""
  key = (name, repr(sorted(spec.items())))
  if key not in _BUILT:
    params, source = dict(spec.get('params') or {}), spec['source']
    if source in detectors.DETECTOR_KINDS:
      built = detectors.build_detector(source, **params)
    elif source in STATIC_SALIENCY + ('motion',):
      built = saliency.build_saliency(source, **params)
    elif source == 'flow':
      method = params.pop('method', 'dis')
      built = (method, flow_lib.make_flow_feature(params.pop('feature', 'hof_mbh'),
                                                  n_eig=spec['n_eig'],
                                                  eig_sign=moment_settings(spec)[0],
                                                  **params))
    elif source == 'external_det':
      built = external.ExternalDetections(**params)
    elif source == 'external_feat':
      built = external.ExternalFeatures(**params)
    elif source == 'audio':
      built = audio.LogMelAudio(**params)
    elif source == 'idt':
      built = idt_video.IdtEncoder(spec['group'], **params)
    else:
      built = external.ExternalSaliency(**params)
    _BUILT[key] = built
  return _BUILT[key]


def source_description(name, spec):
  """JSON-able {name, opencv_version, parameters} of a stream's source, for the manifest."""
  built = sources_for(name, spec)
  if spec['source'] == 'flow':
    method, feature = built
    params = {'method': method, 'feature': feature.name, **(spec.get('params') or {})}
  else:
    params = built.params()
  return {'name': spec['source'], 'opencv_version': cv2.__version__, 'parameters': params}


def sample_indices(num_frames, max_frames):
  """Up to max_frames frame indices spread uniformly over [0, num_frames)."""
  count = min(int(max_frames), int(num_frames))
  return np.unique(np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64))


def consecutive_chunks(path, last, resize_short):
  """Yields (start, frames) chunks of consecutive frames 0..last (motion saliency's input)."""
  for start in range(0, last + 1, MOTION_CHUNK):
    stop = min(last + 1, start + MOTION_CHUNK)
    yield start, video_io.read_frames(path, np.arange(start, stop), resize_short=resize_short)


def sketch_target(vec, spec):
  """Concatenated K sketched GT targets of a raw descriptor: float32 [K * d]."""
  parts = [target.gt_target(vec, CountSketch(vec.shape[-1], int(spec['d']), int(spec['seed']) + k),
                            pn=spec.get('pn', 'sigme'), **dict(spec.get('pn_params') or {}))
           for k in range(int(spec['num_sketches']))]
  return np.concatenate(parts).astype(np.float32)


def _raw_descriptor(name, spec, clip, video_id, path=None):
  """(raw descriptor float64 or None when absent, stats dict) of one stream, with the
  multi-moment blocks of spec['moments'] (all by default)."""
  if spec['source'] in ('external_feat', 'audio'):
    return _feature_rows(name, spec, video_id, path)
  if spec['source'] == 'idt':  # a video-level BoW / FV vector, no multi-moment descriptor
    return sources_for(name, spec)(path)
  vec, stats = _full_descriptor(name, spec, clip, video_id)
  if vec is not None:
    vec = moments.select_blocks(vec, int(spec['n_eig']), moment_settings(spec)[1])
  return vec, stats


def _feature_rows(name, spec, video_id, path):
  """A video-level vector as it is; J x D rows (external features, log-mel audio frames) -> the
  multi-moment descriptor of its rows (weights 1/J, times 0..J-1), with the stream's blocks."""
  built = sources_for(name, spec)
  if spec['source'] == 'audio':
    try:
      features = built(path)
    except (av.error.FFmpegError, OSError) as e:
      raise video_io.VideoReadError(f"cannot read the soundtrack of '{path}': {e}") from None
  else:
    features = built.get(video_id)
  if features is None:
    return None, {'missing': 1}
  if features.ndim == 1:
    return features, {'num_rows': 1}
  eig_sign, blocks = moment_settings(spec)
  vec = moments.multi_moment(features, n_eig=int(spec['n_eig']), times=np.arange(len(features)),
                             eig_sign=eig_sign)
  return moments.select_blocks(vec, int(spec['n_eig']), blocks), {'num_rows': len(features)}


def _full_descriptor(name, spec, clip, video_id):
  """(full multi-moment descriptor float64 or None when absent, stats dict) of one stream."""
  source, built = spec['source'], sources_for(name, spec)
  n_eig = int(spec['n_eig'])
  eig_sign, _ = moment_settings(spec)
  odf_kw = {'use_rbf': bool(spec.get('use_rbf', True)), 'n_eig': n_eig, 'eig_sign': eig_sign}
  if source in detectors.DETECTOR_KINDS:
    dets = built(clip['frames'], clip['indices'])
    vec, present = odf.odf_descriptor(dets, clip['num_frames'], len(LABEL_SPACE),
                                      built.class_score_dim, **odf_kw)
    return (vec if present else None), {'num_boxes': len(dets)}
  if source == 'external_det':
    found = built.get(video_id)
    if found is None:
      return None, {'missing': 1}
    num_frames, dets = found
    vec, present = odf.odf_descriptor(dets, num_frames, built.label_space or len(LABEL_SPACE),
                                      built.class_score_dim, **odf_kw)
    return (vec if present else None), {'num_boxes': len(dets)}
  if source == 'flow':
    method, feature = built
    flows = np.stack([flow_lib.dense_flow(clip['frame_at'][a], clip['frame_at'][b], method)
                      for a, b in clip['pairs']])
    return feature.compute(flows), {'num_flows': len(flows)}
  if source == 'motion':
    chunks = consecutive_chunks(clip['path'], int(clip['indices'][-1]), clip['resize_short'])
    maps = built(chunks, clip['indices'])
  elif source == 'external_sal':
    maps = built.get(video_id)
    if maps is None:
      return None, {'missing': 1}
  else:
    maps = built(clip['frames'])
  if not np.any(maps > 0):
    return None, {'num_maps': len(maps)}
  return sdf.sdf_descriptor(maps, n_eig=n_eig, eig_sign=eig_sign,
                            **dict(spec.get('sdf_params') or {})), {
      'num_maps': len(maps)}


def read_clip(path, specs, frames_per_video, resize_short):
  """Decodes the frames the streams need: uniform samples, plus flow partners."""
  info = video_io.probe(path)
  indices = sample_indices(info.num_frames, frames_per_video)
  pairs = []
  if any(s['source'] == 'flow' for s in specs.values()):
    if info.num_frames < 2:
      raise video_io.VideoReadError(f"cannot compute flow on '{path}': it has one frame")
    pairs = [(int(t), int(t) + 1) if t + 1 < info.num_frames else (int(t) - 1, int(t))
             for t in indices]
  wanted = np.unique(np.concatenate([indices, np.asarray(pairs, np.int64).reshape(-1)]))
  frames = video_io.read_frames(path, wanted, resize_short=resize_short or None)
  frame_at = dict(zip(wanted.tolist(), frames))
  return {'path': path, 'num_frames': info.num_frames, 'indices': indices, 'pairs': pairs,
          'frames': np.stack([frame_at[int(t)] for t in indices]), 'frame_at': frame_at,
          'resize_short': resize_short or None}


def compute_streams(video_id, path, specs, frames_per_video=32, resize_short=0):
  """Targets of one video for the given streams.

  Args:
    video_id: the video's id (external sources are keyed by it).
    path: the video file.
    specs: {stream name: spec dict} (see module docstring; 'n_eig' required).
    frames_per_video: J, frames sampled uniformly for detectors, static saliency and flow.
    resize_short: decode with this short side (0 = native resolution).

  Returns:
    {name: {'target': float32 [K * d] or None, 'raw_dim': int or None, 'stats': dict}}.

  Raises:
    VideoReadError: the video cannot be decoded.
  """
  needs_frames = any(s['source'] not in FILE_SOURCES + SELF_READING for s in specs.values())
  clip = read_clip(path, specs, frames_per_video, resize_short) if needs_frames else None
  out = {}
  for name, spec in specs.items():
    vec, stats = _raw_descriptor(name, spec, clip, video_id, path)
    if vec is not None and not np.any(vec):
      vec = None
    out[name] = {'target': None if vec is None else sketch_target(vec, spec),
                 'raw_dim': None if vec is None else int(vec.shape[-1]), 'stats': stats}
  return out


def stream_specs(ex, names=None):
  """{name: spec dict} of the streams to run (default: config.extract.streams); validated."""
  if names is None:
    names = [n.strip() for n in str(ex.streams).split(',') if n.strip()]
  if not names:
    raise ValueError('config.extract.streams names no stream.')
  specs = {}
  for name in names:
    if name not in ex.stream:
      raise ValueError(f'config.extract.streams names {name!r}, which config.extract.stream does '
                       f'not define (defined: {sorted(ex.stream.keys())}).')
    spec = ex.stream[name].to_dict() if hasattr(ex.stream[name], 'to_dict') else dict(
        ex.stream[name])
    spec.setdefault('n_eig', int(ex.n_eig))
    spec.setdefault('use_rbf', bool(ex.odf_use_rbf))
    spec.setdefault('eig_sign', str(ex.get('eig_sign', 'max_entry')))
    spec.setdefault('moments', str(ex.get('moments', ','.join(moments.MOMENT_BLOCKS))))
    validate_stream(name, spec)
    specs[name] = spec
  return specs


def built_in_specs(config):
  """Specs of every built-in stream of config.extract.stream (external ones need files),
  ordered detectors, saliency, flow."""
  ex = config.extract
  names = [n for n in ex.stream.keys() if ex.stream[n].source in BUILT_IN]
  names.sort(key=lambda n: BUILT_IN.index(ex.stream[n].source))
  return stream_specs(ex, names)
