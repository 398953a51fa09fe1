"""Probes of the raw (unsketched) IDT encodings, whole and per descriptor part, on the objects preset.

Research script behind README 'Auxiliary targets' (IDT BoW / FV streams), not part of the package:
with the codebook an extraction fitted on the train split (`<targets>/idt_codebook.npz`), it
recomputes every video's trajectory descriptors, encodes them (BoW 256, FV first / second order
3408 each, and each FV half restricted to one descriptor part: traj, HOG, HOF, MBHx, MBHy, each
power + l2 normalised on its own), and ridge-probes
(halluc_jax.targets.probe_targets.ridge_probe_accuracy, ridge 1.0, train -> val and train -> test)
the 12 classes, the 6 object kinds and the 2 motions (rise / fall). What the d = 128 sketch of
the stored targets loses is the gap to results/probes/objects_idt_streams.json.

  python results/probes/idt_raw_probes.py --data /tmp/synth_objects --targets /tmp/idt_full \
      --out_json results/probes/objects_idt_raw.json
"""
import argparse
import json
import multiprocessing
import runpy

import numpy as np

from halluc_jax.descriptors import codebooks, encodings
from halluc_jax.targets import idt_video
from halluc_jax.targets.probe_targets import ridge_probe_accuracy


def _encode(job):
  path, settings, book_path = job
  book, _ = codebooks.Codebook.load(book_path)
  x = idt_video.video_descriptors(path, settings)
  if not len(x):
    return None
  z = book.reduce(np.asarray(x, np.float64))
  g_mu, g_sigma = encodings.fisher_gradients(z, *book.gmm)
  out = {'bow': book.encode(x, 'bow'), 'fv1': encodings.power_l2(g_mu.reshape(-1)),
         'fv2': encodings.power_l2(g_sigma.reshape(-1))}
  start = 0
  for name, _ in book.parts:
    width = len(book.pca[name][1])
    for order, grad in (('fv1', g_mu), ('fv2', g_sigma)):
      out[f'{order}:{name}'] = encodings.power_l2(grad[:, start:start + width].reshape(-1))
    start += width
  return out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--data', default='data/synthetic_objects')
  parser.add_argument('--targets', default='data/synthetic_objects/targets_idt')
  parser.add_argument('--out_json', default='')
  args = parser.parse_args()
  settings = runpy.run_path('configs/idt_streams.py')['get_config']().extract.idt.to_dict()
  book_path = f'{args.targets}/idt_codebook.npz'
  metas = [json.loads(line) for line in open(f'{args.data}/metadata.jsonl')]
  jobs = [(f"{args.data}/{m['path']}", settings, book_path) for m in metas]
  with multiprocessing.get_context('spawn').Pool(2) as pool:
    encoded = pool.map(_encode, jobs)
  keep = [i for i, e in enumerate(encoded) if e is not None]
  labels = np.array([metas[i]['label'] for i in keep])
  split = np.array([metas[i]['split'] for i in keep])
  targets = {'class (12)': labels, 'kind (6)': labels // 2, 'motion (2)': labels % 2}
  rows = []
  for name in encoded[keep[0]]:
    x = np.stack([encoded[i][name] for i in keep])
    row = {'encoding': name, 'dim': int(x.shape[1])}
    for eval_split in ('val', 'test'):
      tr, ev = split == 'train', split == eval_split
      for target, y in targets.items():
        row[f'{eval_split} {target}'] = round(100 * ridge_probe_accuracy(
            x[tr], y[tr], x[ev], y[ev], int(y.max()) + 1), 1)
    rows.append(row)
    print(json.dumps(row))
  if args.out_json:
    with open(args.out_json, 'w') as f:
      json.dump({'command': 'python results/probes/idt_raw_probes.py ' + ' '.join(
          f'--{k} {v}' for k, v in vars(args).items() if v), 'num_videos': len(keep),
                 'num_train': int((split == 'train').sum()), 'num_val': int((split == 'val').sum()),
                 'num_test': int((split == 'test').sum()), 'ridge': 1.0,
                 'chance_top1': {'class (12)': 8.3, 'kind (6)': 16.7, 'motion (2)': 50.0},
                 'rows': rows}, f, indent=1)


if __name__ == '__main__':
  main()
