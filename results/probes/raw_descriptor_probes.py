"""Block-wise probes of the raw (unsketched) descriptors of two streams on the objects preset.

Research script behind docs/method.md 'Descriptor choices' (not part of the package): computes
the full multi-moment descriptor psi of odf_shape and off_hofmbh for every train/val video,
then ridge-probes (halluc_jax.targets.probe_targets.ridge_probe_accuracy, ridge 1.0) each block and
[mean; u_1] for the 12 classes, the 6 object kinds and the 2 motions (rise / fall).

  python results/probes/raw_descriptor_probes.py --data data/synthetic_objects \
      --score_threshold 0.9 --eig_sign time --camera median
"""
import argparse
import json
import multiprocessing

import numpy as np

from configs import default
from halluc_jax.targets import extract_video
from halluc_jax.targets.probe_targets import ridge_probe_accuracy

STREAMS = ('odf_shape', 'off_hofmbh')
BLOCKS = ('mean', 'u1', 'u2', 'u3', 'skew', 'kurt', 'eigval')  # psi with n' = 3


def _specs(args):
  stream = default.get_config().extract.stream
  specs = {n: dict(stream[n].to_dict(), n_eig=3, eig_sign=args.eig_sign) for n in STREAMS}
  specs['odf_shape']['params']['score_threshold'] = args.score_threshold
  specs['off_hofmbh']['params']['camera'] = args.camera
  return specs


def _describe(job):
  root, meta, specs = job
  clip = extract_video.read_clip(f"{root}/{meta['path']}", specs, 16, 0)
  vecs = {}
  for name, spec in specs.items():
    vec, _ = extract_video._full_descriptor(name, spec, clip, meta['id'])  # pylint: disable=protected-access
    vecs[name] = vec
  return meta['label'], meta['split'], vecs


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--data', default='data/synthetic_objects')
  parser.add_argument('--score_threshold', type=float, default=0.9)
  parser.add_argument('--eig_sign', default='time')
  parser.add_argument('--camera', default='median')
  args = parser.parse_args()
  specs = _specs(args)
  metas = [json.loads(line) for line in open(f'{args.data}/metadata.jsonl')]
  jobs = [(args.data, m, specs) for m in metas if m['split'] in ('train', 'val')]
  with multiprocessing.Pool(2) as pool:
    rows = [r for r in pool.map(_describe, jobs) if all(v is not None for v in r[2].values())]
  labels = np.array([r[0] for r in rows])
  train = np.array([r[1] == 'train' for r in rows])
  print(f'{vars(args)}; {train.sum()} train / {(~train).sum()} val videos')
  targets = {'class (12)': labels, 'kind (6)': labels // 2, 'motion (2)': labels % 2}
  for name in STREAMS:
    psi = np.stack([r[2][name] for r in rows])
    d = psi.shape[1] // len(BLOCKS)
    block = {b: psi[:, i * d:(i + 1) * d] for i, b in enumerate(BLOCKS)}
    block['mean+u1'] = psi[:, :2 * d]
    for bname, x in block.items():
      accs = [100 * ridge_probe_accuracy(x[train], y[train], x[~train], y[~train], int(y.max()) + 1)
              for y in targets.values()]
      print(f'{name:11s} {bname:8s} ' + '  '.join(
          f'{t} {a:5.1f}' for t, a in zip(targets, accs)))


if __name__ == '__main__':
  main()
