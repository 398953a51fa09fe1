"""The IDT streams' codebook, fitted on training videos only, before the per-video extraction.

`with_codebook(config, specs)` is the one hook extraction.plan_extraction calls (for both the CLI and Beam): when the run has
streams with source 'idt' (bow_idt, fv1_idt, fv2_idt), it makes sure `<out_dir>/idt_codebook.npz`
holds a codebook (descriptors/codebooks.py: per-part PCA, k-means words, diagonal GMM) fitted on
trajectory descriptors of the videos of `config.data.train_split` -- whatever
`config.extract.split` is -- and returns the specs with the codebook's path, fingerprint and
`config.extract.idt` in the IDT streams' params. Those params are part of each stream's cache
fingerprint, so a refitted codebook recomputes every video's IDT targets and nothing else.

The codebook's fingerprint covers config.extract.idt and the train videos' ids and file sizes:
a rerun with the same train split reuses the file; changing val / test videos never refits it.
Fitting samples up to `fit_per_video` descriptors of each of `fit_videos` train videos (0 = all;
a seeded random subset otherwise), in `config.extract.num_workers` processes.
"""
import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
import time

import numpy as np

from halluc_jax.data import datasets
from halluc_jax.data import video as video_io
from halluc_jax.descriptors import codebooks
from halluc_jax.targets import idt_video

SOURCE = 'idt'
CODEBOOK_FILE = 'idt_codebook.npz'


def settings_of(config):
  """config.extract.idt as a plain dict."""
  idt = config.extract.idt
  return idt.to_dict() if hasattr(idt, 'to_dict') else dict(idt)


def train_videos(config):
  """[(video_id, path)] of config.data.train_split, in CSV order (existing files only)."""
  found = datasets.read(config.data, str(config.data.train_split))
  return [(r.video_id, r.path) for r in found.records]


def codebook_fingerprint(settings, videos):
  """Hash of the IDT settings and the train videos (ids and file sizes)."""
  key = {'settings': settings, 'videos': [(vid, os.path.getsize(path)) for vid, path in videos],
         'version': 1}
  return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sampled_rows(job):
  """Worker: (index, video_id, path, settings) -> (up to fit_per_video descriptors or None when
  unreadable, the error). Seeded per video, so the sample does not depend on the scheduling."""
  index, vid, path, settings = job
  try:
    x = idt_video.video_descriptors(path, settings)
  except (video_io.VideoReadError, OSError) as e:  # the extraction reports it again, as a skip
    return None, f'{vid}: {e}'
  per_video = int(settings.get('fit_per_video', 100))
  if len(x) > per_video:
    rng = np.random.default_rng([int(settings.get('seed', 0)), index])
    x = x[np.sort(rng.choice(len(x), per_video, replace=False))]
  return x, ''


def _init_worker():
  import cv2  # pylint: disable=g-import-not-at-top
  cv2.setNumThreads(1)  # one process per core already


def sample_descriptors(videos, settings, num_workers=0):
  """[N, dims] descriptors sampled from the fit videos (seeded), and the number of videos used;
  in `num_workers` spawned processes (0 = in-process)."""
  count = int(settings.get('fit_videos', 0))
  if count and count < len(videos):
    rng = np.random.default_rng(int(settings.get('seed', 0)))
    videos = [videos[i] for i in sorted(rng.choice(len(videos), count, replace=False))]
  jobs = [(i, vid, path, settings) for i, (vid, path) in enumerate(videos)]
  if num_workers <= 0:
    results = list(map(_sampled_rows, jobs))
  else:
    context = multiprocessing.get_context('spawn')  # as extraction.py: fork would copy JAX threads
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                                initializer=_init_worker) as pool:
      results = list(pool.map(_sampled_rows, jobs))
  for _, error in results:
    if error:
      logging.warning('idt codebook: skipping unreadable train video %s.', error)
  rows = [x for x, _ in results if x is not None]
  parts = idt_video.part_layout(settings)
  used = sum(bool(len(x)) for x in rows)
  return (np.concatenate(rows) if rows else np.zeros((0, sum(d for _, d in parts)))), used


def fit(config, path, fingerprint):
  """Fits the codebook on the train split's descriptors and saves it at path."""
  settings, start = settings_of(config), time.time()
  x, used = sample_descriptors(train_videos(config), settings, int(config.extract.num_workers))
  book = codebooks.fit_codebook(
      x, idt_video.part_layout(settings), pca_fraction=float(settings['pca_fraction']),
      bow_words=int(settings['bow_words']), gmm_components=int(settings['gmm_components']),
      kmeans_iters=int(settings['kmeans_iters']), gmm_iters=int(settings['gmm_iters']),
      seed=int(settings['seed']), alpha=float(settings['alpha']))
  book.save(path, fingerprint)
  logging.info('idt codebook: fitted on %d descriptors of %d train videos in %.1fs -> %s',
               len(x), used, time.time() - start, path)
  return book


def stored_fingerprint(path):
  """The fingerprint of the codebook at path, or None (no file, or an unreadable one: refit)."""
  if not os.path.isfile(path):
    return None
  try:
    return codebooks.Codebook.load(path)[1]
  except (OSError, ValueError, KeyError) as e:
    logging.warning('idt codebook: refitting the unreadable %s (%s).', path, e)
    return None


def with_codebook(config, specs):
  """specs, with the train-fitted codebook in the params of every 'idt' stream (fitted now
  unless `<out_dir>/idt_codebook.npz` already matches); specs unchanged without such a stream."""
  names = [n for n, s in specs.items() if s['source'] == SOURCE]
  if not names:
    return specs
  settings = settings_of(config)
  out_dir = str(config.extract.out_dir or config.data.aux_dir)
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, CODEBOOK_FILE)
  fingerprint = codebook_fingerprint(settings, train_videos(config))
  if stored_fingerprint(path) != fingerprint:
    fit(config, path, fingerprint)
  out = dict(specs)
  for name in names:
    out[name] = dict(specs[name], params={'settings': settings, 'codebook': path,
                                          'codebook_fingerprint': fingerprint})
  return out
