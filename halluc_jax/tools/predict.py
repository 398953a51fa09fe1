r"""Classifies one video file with a trained workdir: top-5 labels and per-stream uncertainty.

  python -m halluc_jax.tools.predict --workdir workdirs/default --video my_clip.mp4 [--num_clips 4]

The video is decoded, cut into clips x crops views and normalised exactly as the eval split is
(`halluc_jax.data.clips.decode_eval_clips` + `eval_views`, the pipeline's own functions); class
probabilities are averaged over the views. Only RGB goes in. For a model trained with the
uncertainty loss, CENet is run on the hallucinated streams (it is a train-time head, so the
model's test path skips it) and each stream's predicted uncertainty is printed as the mean
predicted variance of its hallucinated descriptor (`halluc_jax.covariance`). For a
model trained on standardised targets (config.data.standardize_targets) the variances are
reported in the targets' original space, scaled back with the train split's per-dimension std
from the target manifest; when that manifest cannot be read they stay in the standardised space,
and the output says which (`uncertainty_space`).

Parameters come from the newest step under `<workdir>/checkpoints/<step>/state`, the layout of
`halluc_jax.checkpointing`; only params and batch_stats are read (orbax partial restore), so
neither the optimiser state nor the training data is needed.
"""
import dataclasses
import logging
import os

import jax
import numpy as np
from absl import app
from absl import flags

from halluc_jax import checkpointing
from halluc_jax import covariance
from halluc_jax.data import annotations
from halluc_jax.data import datasets
from halluc_jax.data import aux_targets
from halluc_jax.data import clips
from halluc_jax.data import transforms
from halluc_jax.models import hallucinator

_WORKDIR = flags.DEFINE_string('workdir', None, 'Trained workdir (config.json + checkpoints/).')
_VIDEO = flags.DEFINE_string('video', None, 'Video file to classify (any format PyAV reads).')
_NUM_CLIPS = flags.DEFINE_integer('num_clips', None, 'Clips per video; default '
                                  'config.data.eval_clips of the workdir.')
_TOP_K = flags.DEFINE_integer('top_k', 5, 'How many labels to print.')


def stream_dims_of(params):
  """name -> dim of every hallucination stream, read from the stream heads' kernels."""
  return {name: int(head['fc']['kernel'].shape[-1])
          for name, head in (params.get('streams') or {}).items()}


def stream_groups_of(config, names):
  """Fusion groups as the trainer built them: the manifest's, else config.model.streams.groups."""
  groups = dict(config.model.streams.get('groups', {}))
  aux_dir = config.data.get('aux_dir', '')
  if names and aux_dir and os.path.isfile(os.path.join(aux_dir, aux_targets.MANIFEST)):
    manifest = aux_targets.read_manifest(aux_dir)['streams']
    groups = {n: manifest.get(n, {}).get('group', n) for n in names}
  elif names and config.model.fusion.mode == 'weighted_mean':
    logging.warning('No target manifest at %r: weighted-mean fusion uses config.model.streams.'
                    'groups, which may differ from the groups the model was trained with.', aux_dir)
  return groups


def class_names_of(workdir, config):
  """`<workdir>/classes.txt`, else the dataset's classes (classes.txt beside the CSV)."""
  own = os.path.join(workdir, annotations.CLASSES_FILE)
  csv_path = own if os.path.isfile(own) else config.data.annotations
  try:
    if not os.path.isfile(own) and datasets.format_of(config.data) != datasets.CSV:
      # Official formats name their classes in their own files: read the train split.
      names = datasets.read(config.data, config.data.train_split).class_names
    else:
      names = annotations.read_class_names(csv_path, multi_label=bool(config.data.multi_label))
  except (OSError, ValueError) as e:
    logging.warning('No class names (%s); printing class indices.', e)
    names = []
  num_classes = int(config.data.num_classes)
  return names if len(names) == num_classes else [str(c) for c in range(num_classes)]


def decode_views(video_path, config, num_clips=None):
  """float32 [views, T, S, S, 3]: the eval views of one file, normalised as in evaluation."""
  if not os.path.isfile(video_path):
    raise FileNotFoundError(f'Video file not found: {video_path}')
  spec = clips.ClipSpec.from_config(config.data)
  if num_clips is not None:
    if num_clips <= 0:
      raise ValueError(f'--num_clips must be positive, got {num_clips}.')
    spec = dataclasses.replace(spec, eval_clips=int(num_clips))
  try:
    decoded = clips.decode_eval_clips(video_path, spec)
  except clips.DECODE_ERRORS as e:  # the errors the eval pipeline counts as a bad file
    raise ValueError(f'Cannot read video {video_path}: {type(e).__name__}: {e}') from e
  views = clips.eval_views(decoded, spec)  # [clips, crops, T, S, S, 3]
  views = views.reshape((-1,) + views.shape[2:])
  return transforms.normalize(views, spec.mean, spec.std)


def predict_video(workdir, video_path, num_clips=None, top_k=5):
  """Top-k labels and per-stream uncertainty of one video.

  Returns:
    {'step', 'num_views', 'top': [(class name, probability)], 'uncertainty': {stream: mean
     predicted variance} or None when the model was not trained with the uncertainty loss,
     'structure': CENet's covariance structure or None}.
  """
  config = checkpointing.load_run_config(workdir)
  step, variables = checkpointing.restore_run(workdir)
  views = decode_views(video_path, config, num_clips)
  if not variables['batch_stats']:
    variables.pop('batch_stats')
  dims = stream_dims_of(variables['params'])
  standardized = aux_targets.standardize_enabled(config)
  model = hallucinator.build_model(config.model, dims, config.data.num_classes,
                                   stream_groups_of(config, sorted(dims)), standardized)
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
  batch_size = max(1, int(config.data.eval_batch_size))
  logits, hallucinated = [], []
  for start in range(0, len(views), batch_size):
    out = jax.device_get(forward(variables, views[start:start + batch_size]))
    logits.append(np.asarray(out['logits'], np.float64))
    hallucinated.append(out['hallucinated'])
  logits = np.concatenate(logits)
  if config.data.multi_label:
    probs = 1.0 / (1.0 + np.exp(-logits))
  else:
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
  probs = probs.mean(axis=0)
  names = class_names_of(workdir, config)
  order = np.argsort(-probs)[:top_k]
  result = {'step': step, 'num_views': len(views), 'structure': None, 'uncertainty': None,
            'uncertainty_space': None, 'top': [(names[c], float(probs[c])) for c in order]}
  if dims and config.loss.get('hallucination') == 'uncertainty':
    structure = config.model.cenet.structure
    stacked = {n: np.concatenate([h[n] for h in hallucinated]) for n in dims}
    # CENet is a train-time head: call it directly (running BatchNorm statistics, no dropout).
    cholesky = model.apply(variables, stacked,
                           method=lambda module, h: module.cenet(h, train=False))[structure]
    target_std, space = target_std_of(config) if standardized else (None, 'original')
    per_view = covariance.stream_variances(cholesky, structure, dims, target_std)
    result['structure'] = structure
    result['uncertainty_space'] = space
    result['uncertainty'] = {n: float(np.mean(v)) for n, v in sorted(per_view.items())}
  return result


def target_std_of(config):
  """({stream: std [dim]}, 'original') from the train split's target statistics, or
  (None, 'standardised') with a warning when they cannot be read (no manifest here)."""
  try:
    return aux_targets.standardizer_for_config(config).std, 'original'
  except (OSError, ValueError) as e:
    logging.warning('No target statistics (%s): uncertainty stays in the standardised space.', e)
    return None, 'standardised'


def format_result(result, video_path):
  lines = [f'{video_path}: {result["num_views"]} views, checkpoint step {result["step"]}',
           f'Top-{len(result["top"])} labels:']
  width = max(len(name) for name, _ in result['top'])
  lines += [f'  {i + 1}. {name:<{width}}  {p:.4f}' for i, (name, p) in enumerate(result['top'])]
  if result['uncertainty'] is None:
    lines.append('Per-stream uncertainty: n/a (no streams, or trained without the uncertainty '
                 'loss: CENet is untrained).')
  else:
    lines.append(f'Per-stream predicted uncertainty (mean variance of the hallucinated '
                 f'descriptor in the {result.get("uncertainty_space") or "original"} target '
                 f'space; CENet {result["structure"]!r}; lower = more confident):')
    width = max(len(n) for n in result['uncertainty'])
    lines += [f'  {n:<{width}}  {v:.4g}' for n, v in result['uncertainty'].items()]
  return '\n'.join(lines)


def main(argv):
  del argv
  if not _WORKDIR.value or not _VIDEO.value:
    raise app.UsageError('--workdir and --video are required.')
  try:
    result = predict_video(_WORKDIR.value, _VIDEO.value, _NUM_CLIPS.value, _TOP_K.value)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f'predict: {e}') from None  # one clear line, no stack trace
  print(format_result(result, _VIDEO.value))


if __name__ == '__main__':
  app.run(main)
