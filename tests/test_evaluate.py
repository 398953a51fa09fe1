"""evaluate(): multi-view averaging, padding, JSON/PNG output and hallucination quality."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from halluc_jax.evaluation import evaluate as ev
from halluc_jax.evaluation import metrics

C, DIM = 4, 6
RNG = np.random.default_rng(0)
W_CLS = RNG.normal(size=(24, C))
W_HAL = RNG.normal(size=(24, DIM))


def predict_fn(batch):
  """A fixed linear 'model' on the pixels; numpy in, numpy out."""
  x = np.asarray(batch['video']).reshape(len(batch['video']), -1)
  return {'logits': x @ W_CLS, 'hallucinated': {'odf': x @ W_HAL}}


def _views(num_videos, views_per_video, multi_label=False):
  """One dict per view, shuffled so a video's views land in different batches."""
  labels = (RNG.random((num_videos, C)) < 0.4).astype(np.float32) if multi_label else \
      RNG.integers(0, C, size=num_videos)
  targets = RNG.normal(size=(num_videos, DIM)).astype(np.float32)
  views = []
  for v in range(num_videos):
    for k in range(views_per_video):
      views.append(dict(video=RNG.normal(size=(1, 2, 4, 3)).astype(np.float32),
                        label=labels[v], valid=1.0, video_index=v, view_index=k,
                        target=targets[v], mask=float(v % 3 != 0)))
  return [views[i] for i in RNG.permutation(len(views))]


def _batches(views, batch_size, pad_video):
  """Stacks views into batches; the last one is padded with a loud, invalid wrong view."""
  views = list(views)
  while len(views) % batch_size:
    views.append(dict(views[0], video=100 * np.ones((1, 2, 4, 3), np.float32), valid=0.0,
                      video_index=pad_video, mask=1.0))
  out = []
  for i in range(0, len(views), batch_size):
    chunk = views[i:i + batch_size]
    stack = lambda key, dtype: np.asarray([v[key] for v in chunk], dtype)
    out.append({'video': stack('video', np.float32),
                'label': np.asarray([v['label'] for v in chunk]),
                'valid': stack('valid', np.float32), 'video_index': stack('video_index', np.int32),
                'view_index': stack('view_index', np.int32),
                'aux': {'odf': stack('target', np.float32)},
                'aux_mask': {'odf': stack('mask', np.float32)}})
  return out


def _expected_per_video(views, squash):
  """Plain loop: mean of squashed logits over each video's valid views."""
  sums, counts, labels = {}, {}, {}
  for v in views:
    if not v['valid']:
      continue
    p = squash(predict_fn({'video': v['video'][None]})['logits'][0])
    sums[v['video_index']] = sums.get(v['video_index'], 0) + p
    counts[v['video_index']] = counts.get(v['video_index'], 0) + 1
    labels[v['video_index']] = v['label']
  keys = sorted(sums)
  return np.array([sums[k] / counts[k] for k in keys]), np.array([labels[k] for k in keys])


def _softmax(z):
  e = np.exp(z - z.max())
  return e / e.sum()


def test_multi_view_average_each_video_once_and_padding_ignored(tmp_path):
  views = _views(num_videos=9, views_per_video=3)
  views[0] = dict(views[0], valid=0.0, video=100 * np.ones((1, 2, 4, 3), np.float32))  # bad decode
  batches = _batches(views, batch_size=4, pad_video=views[1]['video_index'])
  res = ev.evaluate(predict_fn, batches, C, class_names=list('abcd'), out_dir=str(tmp_path),
                    step=7)
  probs, labels = _expected_per_video(views, _softmax)
  assert res['num_videos'] == 9 and res['num_views'] == 26
  assert res['num_invalid_views'] == 1 + (4 - 27 % 4)
  assert res['top1'] == pytest.approx(np.mean(probs.argmax(1) == labels))
  assert res['top5'] == 1.0  # C = 4 < 5
  cm = metrics.confusion_matrix(labels, probs.argmax(1), C)
  assert res['confusion'] == cm.tolist()
  assert res['mean_class_accuracy'] == pytest.approx(metrics.mean_class_accuracy(cm))
  assert set(res['per_class_accuracy']) == set('abcd')

  # Counting the loud padding/invalid views would have changed the averaged probabilities.
  all_valid = [dict(v, valid=1.0) for b in batches for v in _unstack(b)]
  probs_bad, _ = _expected_per_video(all_valid, _softmax)
  assert not np.allclose(probs_bad[:9], probs)

  saved = json.load(open(tmp_path / 'eval_7.json'))
  assert saved == json.load(open(tmp_path / 'eval_latest.json'))
  assert saved['top1'] == pytest.approx(res['top1']) and saved['step'] == 7
  png = tmp_path / 'confusion_7.png'
  assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and os.path.getsize(png) > 2000


def _unstack(batch):
  n = len(batch['valid'])
  return [dict(video=batch['video'][i], valid=batch['valid'][i], label=batch['label'][i],
               video_index=int(batch['video_index'][i])) for i in range(n)]


def test_hallucination_quality_uses_only_masked_valid_clips():
  views = _views(num_videos=6, views_per_video=2)
  res = ev.evaluate(predict_fn, _batches(views, 5, pad_video=0), C)
  sel = [v for v in views if v['valid'] and v['mask']]
  pred = np.stack([predict_fn({'video': v['video'][None]})['hallucinated']['odf'][0] for v in sel])
  target = np.stack([v['target'] for v in sel])
  q = res['hallucination']['odf']
  assert q['num_clips'] == len(sel) == 8
  assert q['cosine'] == pytest.approx(metrics.cosine_similarity(pred, target).mean())
  assert q['r2'] == pytest.approx(metrics.r2_score(pred, target))

  def perfect(batch):  # hallucinates the targets exactly: the quality numbers must say so
    return {'logits': predict_fn(batch)['logits'], 'hallucinated': dict(batch['aux'])}
  q = ev.evaluate(perfect, _batches(views, 5, pad_video=0), C)['hallucination']['odf']
  assert q['cosine'] == pytest.approx(1.0) and q['r2'] == pytest.approx(1.0)


def test_multi_label_map_and_jax_outputs(tmp_path):
  views = _views(num_videos=10, views_per_video=2, multi_label=True)

  def jax_predict(batch):
    out = predict_fn(batch)
    return {'logits': jnp.asarray(out['logits']), 'hallucinated': {}}
  res = ev.evaluate(jax_predict, _batches(views, 3, pad_video=0), C, multi_label=True,
                    out_dir=str(tmp_path), step=None)
  probs, labels = _expected_per_video(views, lambda z: 1 / (1 + np.exp(-z)))
  assert res['mAP'] == pytest.approx(metrics.mean_average_precision(probs, labels)[0], rel=1e-6)
  assert res['num_videos'] == 10 and 'confusion' not in res
  assert (tmp_path / 'eval_final.json').exists()
  assert not list(tmp_path.glob('confusion_*.png'))  # undefined for multi-label data


def test_bad_inputs_give_clear_errors():
  views = _views(num_videos=2, views_per_video=2)
  batches = _batches(views, 4, pad_video=0)
  batches[0]['label'] = np.array([0, 1, 2, 3])
  batches[0]['video_index'] = np.array([5, 5, 6, 6], np.int32)
  with pytest.raises(ValueError, match='video_index 5 two different labels'):
    ev.evaluate(predict_fn, batches, C)
  with pytest.raises(ValueError, match=r'expected \[batch, 3\]'):
    ev.evaluate(predict_fn, _batches(views, 4, pad_video=0), 3)
  doubled = lambda b: {'logits': np.tile(predict_fn(b)['logits'], (2, 1))}
  with pytest.raises(ValueError, match='returned 8 rows for a batch of 4'):
    ev.evaluate(doubled, _batches(views, 4, pad_video=0), C)
  res = ev.evaluate(predict_fn, [], C)  # empty eval set: zeros, no crash
  assert res['num_videos'] == 0 and res['top1'] == 0.0
