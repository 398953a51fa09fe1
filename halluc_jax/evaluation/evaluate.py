"""Multi-view video evaluation from RGB only (docs/method.md §2.6 and §7).

`evaluate` runs a predict function over an eval iterator whose batches hold several views
(clips x crops) per video, averages class probabilities over each video's valid views, and
scores every video exactly once. Where the eval split has hallucination targets it also
measures, per stream, how close the hallucinated descriptor is to the ground truth (cosine
similarity and pooled R^2, over valid clips whose target is present). Ground-truth descriptors
are only *compared against*, never fed to the model.

Hallucination quality is always scored in the targets' original space: when the model regresses
standardised targets (config.data.standardize_targets; docs/method.md, "Target
standardisation"), its predictions and the batch's standardised targets are mapped back with the
train split's statistics first, so the figures compare with runs on raw targets. Given those
statistics, each stream also reports the constant predictor that always outputs the train-split
mean target ('train_mean_cosine', 'train_mean_r2' on the same clips): a head that has learnt
anything per video beats it.

Results go to `<out_dir>/eval_<step>.json` (also copied to `eval_latest.json`) and, for
single-label data, a confusion-matrix PNG `<out_dir>/confusion_<step>.png`.

Several processes: each iterates over its own shard of the views (same number of batches
everywhere), and after every batch the per-view results of all processes are gathered, so every
process scores every video exactly once and all return the same result (process 0 writes it).
"""
import json
import logging
import os
import time

import numpy as np

from halluc_jax.evaluation import metrics
from halluc_jax.data import aux_targets

# Above this many classes the per-class tick labels are unreadable; the PNG drops them.
_MAX_TICK_LABELS = 60
# The raw confusion matrix goes into the JSON only while it stays small.
_MAX_JSON_CONFUSION = 64


def _softmax(logits):
  z = logits - logits.max(axis=1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=1, keepdims=True)


def _sigmoid(logits):
  return 0.5 * (1.0 + np.tanh(0.5 * logits))  # overflow-free form of 1 / (1 + exp(-x))


class VideoAggregator:
  """Sums per-view probabilities by video index, so each video is scored once."""

  def __init__(self, num_classes, multi_label):
    self.num_classes = num_classes
    self.multi_label = multi_label
    self._row_of = {}  # video_index -> row in the arrays below
    self._sums = np.zeros((0, num_classes), np.float64)
    self._counts = np.zeros((0,), np.int64)
    self._labels = []
    self.num_views = 0

  def _grow(self, n):
    if n > self._sums.shape[0]:
      new = max(n, 2 * self._sums.shape[0], 64)
      self._sums = np.concatenate([self._sums, np.zeros((new - self._sums.shape[0],
                                                         self.num_classes))])
      self._counts = np.concatenate([self._counts, np.zeros((new - self._counts.shape[0],),
                                                            np.int64)])

  def add(self, probs, labels, video_index):
    """Adds valid views: probs float [N, C], labels [N] or [N, C], video_index int [N]."""
    rows = np.empty((len(video_index),), np.int64)
    for i, (vid, label) in enumerate(zip(video_index.tolist(), labels)):
      row = self._row_of.get(vid)
      if row is None:
        row = self._row_of[vid] = len(self._row_of)
        self._labels.append(label)
      elif not np.array_equal(self._labels[row], label):
        raise ValueError(f'Eval batch gives video_index {vid} two different labels '
                         f'({self._labels[row]} and {label}); video indices must be unique '
                         'per video in the eval split.')
      rows[i] = row
    self._grow(len(self._row_of))
    np.add.at(self._sums, rows, probs)
    np.add.at(self._counts, rows, 1)
    self.num_views += len(rows)

  def result(self):
    """(mean probabilities float [V, C], labels [V] or [V, C]) in first-seen video order."""
    n = len(self._row_of)
    probs = self._sums[:n] / np.maximum(self._counts[:n, None], 1)
    if self.multi_label:
      labels = np.asarray(self._labels, np.float32).reshape((n, self.num_classes))
    else:
      labels = np.asarray(self._labels, np.int64).reshape((n,))
    return probs, labels


class StreamQuality:
  """Per-stream cosine similarity and R^2 of hallucinated vs target descriptors, and of the
  constant train-mean predictor when its mean is given."""

  def __init__(self):
    self._cos_sum, self._count, self._r2 = {}, {}, {}
    self._base_cos_sum, self._base_r2 = {}, {}

  def add(self, stream, pred, target, train_mean=None):
    """Adds clips: pred, target float [N, dim]; train_mean float [dim] or None."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
      raise ValueError(f'Stream {stream!r}: hallucinated shape {pred.shape} does not match the '
                       f'target shape {target.shape} in the eval batch.')
    if stream not in self._r2:
      self._cos_sum[stream], self._count[stream] = 0.0, 0
      self._r2[stream] = metrics.R2Accumulator(pred.shape[1])
    self._cos_sum[stream] += float(metrics.cosine_similarity(pred, target).sum())
    self._count[stream] += pred.shape[0]
    self._r2[stream].update(pred, target)
    if train_mean is not None:
      baseline = np.broadcast_to(np.asarray(train_mean, np.float64), target.shape)
      if stream not in self._base_r2:
        self._base_cos_sum[stream] = 0.0
        self._base_r2[stream] = metrics.R2Accumulator(pred.shape[1])
      self._base_cos_sum[stream] += float(metrics.cosine_similarity(baseline, target).sum())
      self._base_r2[stream].update(baseline, target)

  def result(self):
    out = {}
    for s in sorted(self._r2):
      if self._count[s] == 0:
        continue
      out[s] = {'cosine': self._cos_sum[s] / self._count[s], 'r2': self._r2[s].result(),
                'num_clips': self._count[s]}
      if s in self._base_r2:
        out[s]['train_mean_cosine'] = self._base_cos_sum[s] / self._count[s]
        out[s]['train_mean_r2'] = self._base_r2[s].result()
    return out


def target_space_args(config):
  """`evaluate` keyword arguments for config's targets: {'train_stats', 'standardized'}.

  train_stats is the train split's TargetStandardizer (the manifest's statistics, computed on
  the fly for an older manifest). Without standardisation, statistics that cannot be had only
  drop the train-mean baseline (with a warning); with it, they are an error.
  """
  if not config.data.get('aux_dir', ''):
    return {}
  standardized = aux_targets.standardize_enabled(config)
  try:
    stats = aux_targets.standardizer_for_config(config)
  except (ValueError, FileNotFoundError) as e:
    if standardized:
      raise
    logging.warning('Evaluation without the train-mean baseline: %s', e)
    stats = None
  return {'train_stats': stats, 'standardized': standardized}


def _to_numpy(tree):
  if isinstance(tree, dict):
    return {k: _to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree)  # also fetches jax arrays from the device


def gather_processes(tree):
  """Concatenates each numpy leaf over all processes along axis 0 (process order); identity with
  one process. Leaves must have the same shape in every process (eval batches do)."""
  import jax  # pylint: disable=g-import-not-at-top  # only multi-process runs need it here
  if jax.process_count() == 1:
    return tree
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def _scored_fields(out, batch):
  """The numeric per-view pieces scoring needs (never the video), from this process."""
  fields = {'logits': out['logits'],
            'hallucinated': dict(out.get('hallucinated') or {})}
  for key in ('valid', 'label', 'video_index', 'aux', 'aux_mask'):
    if batch.get(key) is not None:
      fields[key] = batch[key]
  return _to_numpy(fields)


def _add_quality(quality, hallucinated, batch, keep, train_stats=None, standardized=False):
  aux, aux_mask = batch.get('aux') or {}, batch.get('aux_mask') or {}
  for stream, pred in hallucinated.items():
    if stream not in aux or stream not in aux_mask:
      continue  # no ground truth for this stream in the eval split
    sel = keep & (np.asarray(aux_mask[stream]).reshape(-1) > 0)
    if not sel.any():
      continue
    pred = np.asarray(pred, np.float64)[sel]
    target = np.asarray(aux[stream], np.float64)[sel]
    has_stats = train_stats is not None and stream in train_stats.mean
    if standardized:
      if not has_stats:
        raise ValueError(f'Stream {stream!r} is standardised but the train statistics lack it.')
      # Both back to the original space, where the metrics of earlier runs were computed.
      mean, std = (np.asarray(a, np.float64) for a in (train_stats.mean[stream],
                                                       train_stats.std[stream]))
      pred = aux_targets.destandardize(pred, mean, std)
      target = aux_targets.destandardize(target, mean, std)
    quality.add(stream, pred, target, train_stats.mean[stream] if has_stats else None)


def evaluate(predict_fn, eval_iter, num_classes, *, multi_label=False, class_names=None,
             out_dir=None, step=None, gather=gather_processes, train_stats=None,
             standardized=False):
  """Scores a model on a multi-view eval set; optionally writes JSON and a confusion PNG.

  Args:
    predict_fn: batch -> {'logits': [B, C], 'hallucinated': {stream: [B, dim]}} (jax or
      numpy); it must use only batch['video'].
    eval_iter: iterable of batches with 'video', 'label' (int [B] or multi-hot [B, C]),
      'valid' [B] (0 = padding or failed decode), 'video_index' [B], optionally 'aux' and
      'aux_mask' {stream: ...}.
    num_classes: C.
    multi_label: sigmoid scores + mAP instead of softmax + confusion matrix.
    class_names: optional list of C names for the JSON and the PNG axes.
    out_dir: where to write results; None writes nothing.
    step: training step, used in the file names ('final' when None).
    gather: per-view numpy tree of this process -> the same tree over all processes.
    train_stats: the train split's `aux_targets.TargetStandardizer` (`target_space_args`);
      adds the train-mean baseline per stream. None: no baseline.
    standardized: predictions and batch['aux'] are standardised targets; both are mapped back
      to the original space with `train_stats` before scoring.

  Returns:
    Dict with top1, top5, mean_class_accuracy (single-label), mAP (multi-label), num_videos,
    num_views, num_invalid_views, per-class scores, 'hallucination' {stream: {cosine, r2,
    num_clips[, train_mean_cosine, train_mean_r2]}} (original space) and eval_seconds.
  """
  if standardized and train_stats is None:
    raise ValueError('evaluate(standardized=True) needs train_stats to map predictions back.')
  start = time.time()
  videos = VideoAggregator(num_classes, multi_label)
  quality = StreamQuality()
  num_invalid = 0
  for batch in eval_iter:
    out = _to_numpy(predict_fn(batch))
    logits = np.asarray(out['logits'])
    if logits.ndim != 2 or logits.shape[1] != num_classes:
      raise ValueError(f'predict_fn returned logits of shape {logits.shape}; expected '
                       f'[batch, {num_classes}].')
    if len(logits) != len(np.asarray(batch['valid']).reshape(-1)):
      raise ValueError(f'predict_fn returned {len(logits)} rows for a batch of '
                       f"{len(batch['valid'])}; it must return one row per row of the "
                       '(process-local) batch.')
    views = gather(_scored_fields(out, batch))  # the views of every process, each once
    logits = np.asarray(views['logits'], np.float64)
    keep = np.asarray(views['valid']).reshape(-1) > 0
    num_invalid += int((~keep).sum())
    probs = _sigmoid(logits) if multi_label else _softmax(logits)
    labels = np.asarray(views['label'])
    videos.add(probs[keep], labels[keep], np.asarray(views['video_index']).reshape(-1)[keep])
    _add_quality(quality, views['hallucinated'], views, keep, train_stats, standardized)

  probs, labels = videos.result()
  names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
  result = {'step': step, 'num_videos': int(len(labels)), 'num_views': videos.num_views,
            'num_invalid_views': num_invalid, 'multi_label': multi_label,
            'top1': metrics.topk_accuracy(probs, labels, 1),
            'top5': metrics.topk_accuracy(probs, labels, 5)}
  cm = None
  if multi_label:
    result['mAP'], ap = metrics.mean_average_precision(probs, labels)
    result['per_class_ap'] = dict(zip(names, ap.tolist()))
  else:
    cm = metrics.confusion_matrix(labels, probs.argmax(axis=1), num_classes)
    result['mean_class_accuracy'] = metrics.mean_class_accuracy(cm)
    result['per_class_accuracy'] = dict(zip(names, metrics.per_class_accuracy(cm).tolist()))
    if num_classes <= _MAX_JSON_CONFUSION:
      result['confusion'] = cm.tolist()
  result['hallucination'] = quality.result()
  result['eval_seconds'] = time.time() - start
  if not len(labels):
    logging.warning('Evaluation saw no valid view (%d invalid); all metrics are 0.', num_invalid)
  logging.info('Eval at step %s: top1 %.4f top5 %.4f over %d videos (%d views, %d invalid).',
               step, result['top1'], result['top5'], result['num_videos'], result['num_views'],
               num_invalid)
  if out_dir:
    write_results(result, out_dir, step, cm=cm, class_names=names)
  return result


def _json_safe(x):
  """NaN/inf -> None so the file is strict JSON (readable by any parser)."""
  if isinstance(x, dict):
    return {str(k): _json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_json_safe(v) for v in x]
  if isinstance(x, (float, np.floating)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, np.integer):
    return int(x)
  return x


def _atomic_write_json(obj, path):
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(_json_safe(obj), f, indent=1, allow_nan=False)
  os.replace(tmp, path)  # a reader (tables.py) never sees half a file


def write_results(result, out_dir, step, cm=None, class_names=None):
  """Writes eval_<step>.json, eval_latest.json and (given cm) confusion_<step>.png."""
  os.makedirs(out_dir, exist_ok=True)
  tag = 'final' if step is None else str(step)
  _atomic_write_json(result, os.path.join(out_dir, f'eval_{tag}.json'))
  _atomic_write_json(result, os.path.join(out_dir, 'eval_latest.json'))
  if cm is not None:
    plot_confusion(cm, class_names, os.path.join(out_dir, f'confusion_{tag}.png'),
                   title=f'step {tag}: top-1 {result["top1"]:.3f}, '
                   f'{result["num_videos"]} videos')


def plot_confusion(cm, class_names, path, title=''):
  """Row-normalised confusion matrix (recall per true class) with class names on the axes."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  cm = np.asarray(cm)
  n = cm.shape[0]
  norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
  size = min(4 + 0.35 * n, 30)
  fig, ax = plt.subplots(figsize=(size + 1.5, size))
  image = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
  fig.colorbar(image, ax=ax, fraction=0.046, label='fraction of true class')
  if n <= _MAX_TICK_LABELS:
    names = class_names or [str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
  if n <= 20:  # counts stay legible only for small matrices
    for i, j in zip(*np.nonzero(cm)):
      ax.text(j, i, str(cm[i, j]), ha='center', va='center', fontsize=7,
              color='white' if norm[i, j] > 0.5 else 'black')
  ax.set_xlabel('predicted')
  ax.set_ylabel('true')
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
