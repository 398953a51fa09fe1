"""The engine the target-extraction CLIs share: plan, per-video worker with its cache, outputs.

`extract.py` (one machine, a process pool) and `extract_beam.py` (Apache Beam, any runner) both
run `plan_extraction`, then `process_video` on every job wherever they like, then
`write_outputs` on the results; so their targets, manifest and summary are the same by
construction.

Cache: each finished video is one .npz under `<out_dir>/cache/`, with a fingerprint per stream:
a rerun after an interruption or a config change recomputes only what is missing or stale. The
fingerprint covers the stream's config, the frame sampling and a format version, not the content
of external files: after regenerating external detections or maps, delete the cache. Failed
videos are never cached (a rerun retries them).

Manifest, per stream: dim (= num_sketches * d), raw_dim, group, sketch_dim, num_sketches,
sketch_seeds, pn {name, params}, moments {blocks, n_eig, eig_sign} (the multi-moment descriptor's
settings), source {name, opencv_version, parameters}, num_present; plus
`skipped_videos` {video_id: reason} (unreadable files are logged, counted and skipped) and
`target_stats`: the per-dimension mean and std of every stream over the valid targets of the
train split (`config.data.train_split`) only, the statistics `config.data.standardize_targets`
uses (format: `halluc_jax.data.aux_targets`; docs/method.md, "Target standardisation"). When
the extracted splits do not include the train split the manifest has none (a warning says so).
"""
import hashlib
import json
import logging
import os
import time
from typing import NamedTuple, Optional
import urllib.parse

import numpy as np

from halluc_jax.targets import extract_video
from halluc_jax.targets import idt_fit
from halluc_jax.data import datasets

CACHE_DIR = 'cache'
FORMAT_VERSION = 1  # bump when the maths changes so old caches are recomputed


def fingerprint(spec, ex):
  """Hash of everything a stream's target depends on (so stale caches are recomputed)."""
  key = {'spec': spec, 'frames_per_video': int(ex.frames_per_video),
         'resize_short': int(ex.resize_short), 'version': FORMAT_VERSION}
  return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_video_list(config):
  """([(video_id, path)] of the configured split(s) in CSV order, [missing file paths])."""
  split = str(config.extract.split)
  if split == 'all':
    splits = datasets.split_names(config.data) or ['']  # '' = a CSV without a split column
  else:
    splits = [s.strip() for s in split.split(',') if s.strip()]
  videos, missing, seen = [], [], set()
  for s in splits:
    found = datasets.read(config.data, s)
    missing += found.missing_paths
    for r in found.records:
      if r.video_id not in seen:
        seen.add(r.video_id)
        videos.append((r.video_id, r.path))
  return videos, missing


def cache_path(cache_dir, video_id):
  return os.path.join(cache_dir, urllib.parse.quote(str(video_id), safe='') + '.npz')


def load_cache(path):
  """{name: {'target', 'raw_dim', 'stats', 'fingerprint'}} of a cache file ({} if unreadable)."""
  if not os.path.isfile(path):
    return {}
  try:
    with np.load(path) as data:
      meta = json.loads(str(data['meta']))
      for name, entry in meta.items():
        entry['target'] = np.asarray(data[f't:{name}']) if entry['present'] else None
    return meta
  except (OSError, ValueError, KeyError) as e:  # a half-written or foreign file: recompute
    logging.warning('Ignoring unreadable cache file %s (%s).', path, e)
    return {}


def save_cache(path, entries):
  meta = {n: {k: v for k, v in e.items() if k != 'target'} | {'present': e['target'] is not None}
          for n, e in entries.items()}
  arrays = {f't:{n}': e['target'] for n, e in entries.items() if e['target'] is not None}
  tmp = path + '.tmp.npz'
  np.savez(tmp, meta=json.dumps(meta), **arrays)
  os.replace(tmp, path)  # atomic: an interrupted run leaves the old file or none


def init_worker():
  """Per-process set-up of every extraction worker (pool initializer, Beam DoFn.setup)."""
  import cv2  # pylint: disable=g-import-not-at-top
  cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe


class Plan(NamedTuple):
  """What to extract: `plan_extraction`'s answer, read by the runners and `write_outputs`."""
  out_dir: str
  specs: dict  # {stream: spec dict}
  videos: list  # [(video_id, path)] in CSV order (after config.extract.max_videos)
  missing: list  # CSV rows whose file does not exist
  jobs: list  # one `process_video` argument per video, in the order of `videos`


class VideoResult(NamedTuple):
  """What a worker returns for one video."""
  video_id: str
  entries: Optional[dict]  # {stream: {'target', 'raw_dim', 'stats', ...}}; None if it failed
  error: str  # one-line reason when entries is None
  computed: bool  # False when every stream came from the cache


def plan_extraction(config):
  """Validates config.extract, lists the videos, creates the cache folder; returns a Plan."""
  ex = config.extract
  out_dir = str(ex.out_dir or config.data.aux_dir)
  if not out_dir:
    raise ValueError('No output directory: set config.extract.out_dir or config.data.aux_dir.')
  specs = idt_fit.with_codebook(config, extract_video.stream_specs(ex))  # train-only fit
  prints = {n: fingerprint(s, ex) for n, s in specs.items()}
  videos, missing = read_video_list(config)
  if missing:
    logging.warning('extract: %d videos of the CSV are missing on disk and skipped; first: %s',
                    len(missing), missing[:5])
  if ex.max_videos:
    videos = videos[:int(ex.max_videos)]
  cache_dir = os.path.join(out_dir, CACHE_DIR)
  os.makedirs(cache_dir, exist_ok=True)
  jobs = [(vid, path, specs, prints, int(ex.frames_per_video), int(ex.resize_short),
           cache_path(cache_dir, vid)) for vid, path in videos]
  return Plan(out_dir, specs, videos, missing, jobs)


def _stale_streams(entries, specs, prints):
  return {n: s for n, s in specs.items() if entries.get(n, {}).get('fingerprint') != prints[n]}


def process_video(job):
  """Worker: (video_id, path, specs, fingerprints, frames, resize, cache file) -> VideoResult."""
  video_id, path, specs, prints, frames_per_video, resize_short, cache_file = job
  entries = load_cache(cache_file)
  todo = _stale_streams(entries, specs, prints)
  if todo:
    try:
      computed = extract_video.compute_streams(video_id, path, todo, frames_per_video,
                                               resize_short)
    except Exception as e:  # pylint: disable=broad-except
      # Any failure skips this video (reported), never the whole job; a bug that breaks every
      # video still stops the run (see write_outputs).
      return VideoResult(video_id, None, f'{type(e).__name__}: {e}'.splitlines()[0][:500], True)
    for name, entry in computed.items():
      entries[name] = dict(entry, fingerprint=prints[name])
    save_cache(cache_file, entries)
  return VideoResult(video_id, {n: entries[n] for n in specs}, '', bool(todo))


def cached_result(job, computed):
  """The VideoResult of a video a worker elsewhere finished, read back from its cache file.

  For runners whose workers return only (video_id, error, computed): the targets travel through
  the cache, which must then be on storage the workers and this process share.
  """
  video_id, _, specs, prints, _, _, cache_file = job
  entries = load_cache(cache_file)
  stale = _stale_streams(entries, specs, prints)
  if stale:
    raise RuntimeError(f'Video {video_id} was reported done, but {cache_file} lacks streams '
                       f'{sorted(stale)}: is the output directory on storage the workers share?')
  return VideoResult(video_id, {n: entries[n] for n in specs}, '', computed)


def build_manifest(specs, results, skipped, config):
  streams = {}
  for name, spec in specs.items():
    present = [r[name] for r in results.values() if r[name]['target'] is not None]
    streams[name] = {
        'dim': int(spec['num_sketches']) * int(spec['d']), 'group': spec['group'],
        'raw_dim': present[0]['raw_dim'] if present else None,
        'sketch_dim': int(spec['d']), 'num_sketches': int(spec['num_sketches']),
        'sketch_seeds': [int(spec['seed']) + k for k in range(int(spec['num_sketches']))],
        'pn': {'name': spec.get('pn', 'sigme'), 'params': dict(spec.get('pn_params') or {})},
        'moments': dict(zip(('eig_sign', 'blocks'), extract_video.moment_settings(spec)),
                        n_eig=int(spec['n_eig'])),
        'source': extract_video.source_description(name, spec),
        'num_present': len(present)}
  return {'streams': streams, 'skipped_videos': skipped, 'num_videos': len(results),
          'split': str(config.extract.split),
          'frames_per_video': int(config.extract.frames_per_video),
          'resize_short': int(config.extract.resize_short), 'created': time.time()}


def train_stats_of_records(records, specs, config):
  """`target_stats` of config.data.train_split from the records about to be written, or None
  (with a warning) when that split is not among them."""
  from halluc_jax.data import aux_targets  # pylint: disable=g-import-not-at-top
  split = str(config.data.train_split)
  try:
    train_ids = {r.video_id for r in datasets.read(config.data, split).records}
  except (ValueError, FileNotFoundError) as e:
    logging.warning('extract: no target statistics (split %r unreadable: %s).', split, e)
    return None
  rows = [streams for vid, streams in records if vid in train_ids]
  if not rows:
    logging.warning('extract: none of the extracted videos is in split %r, so the manifest has '
                    'no target statistics; config.data.standardize_targets needs them.', split)
    return None
  dims = {n: int(s['num_sketches']) * int(s['d']) for n, s in specs.items()}
  return aux_targets.accumulate_target_stats(rows, dims, split, len(rows))


def write_outputs(config, plan, results, start):
  """Gathers the VideoResults (any order, consumed as they come) and writes shards + manifest.

  Args:
    config: the run's config (config.extract, config.data).
    plan: the `plan_extraction` it ran.
    results: iterable of one VideoResult per job.
    start: time.time() when the run started (for the summary's seconds).

  Returns:
    {'out_dir', 'num_videos', 'computed': [ids computed now], 'cached': [ids served from the
    cache], 'skipped': {id: reason}, 'missing_files': [CSV rows whose file does not exist],
    'num_present': {stream: count}, 'seconds'}.
  """
  # Imported here, not at the top: spawned workers import this module and need no flax or jax.
  from halluc_jax.data import aux_targets  # pylint: disable=g-import-not-at-top
  done, skipped, computed, cached = {}, {}, [], []
  for result in results:
    if result.entries is None:
      logging.warning('Skipping video %s: %s', result.video_id, result.error)
      skipped[result.video_id] = result.error
      continue
    done[result.video_id] = result.entries
    (computed if result.computed else cached).append(result.video_id)
  if plan.videos and not done:
    raise RuntimeError(f'Every one of the {len(plan.videos)} videos failed; first: '
                       f'{next(iter(skipped.items()))}.')
  order = [vid for vid, _ in plan.videos if vid in done]
  records = [(vid, {n: e['target'] for n, e in done[vid].items() if e['target'] is not None})
             for vid in order]
  manifest = build_manifest(plan.specs, done, skipped, config)
  manifest['missing_files'] = plan.missing
  stats = train_stats_of_records(records, plan.specs, config)
  if stats is not None:
    manifest[aux_targets.STATS_KEY] = stats
  aux_targets.write_targets(plan.out_dir, records, manifest,
                            int(config.extract.records_per_shard))
  summary = {'out_dir': plan.out_dir, 'num_videos': len(plan.videos), 'computed': computed,
             'cached': cached, 'skipped': skipped, 'missing_files': plan.missing,
             'seconds': time.time() - start,
             'num_present': {n: s['num_present'] for n, s in manifest['streams'].items()}}
  logging.info('extract: %d videos (%d computed, %d cached, %d skipped%s) in %.1fs -> %s; '
               'targets present per stream: %s', len(plan.videos), len(computed), len(cached),
               len(skipped), f': {sorted(skipped)}' if skipped else '', summary['seconds'],
               plan.out_dir, summary['num_present'])
  return summary


def summary_json(summary):
  """The summary as the CLIs print it (id lists as counts)."""
  return json.dumps({k: (len(v) if k in ('computed', 'cached', 'missing_files') else v)
                     for k, v in summary.items()}, indent=1)
