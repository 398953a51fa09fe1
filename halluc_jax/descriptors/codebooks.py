"""Fitting the BoW / FV codebook of local descriptors: per-part PCA, k-means, diagonal GMM.

The codebook is fitted once, on descriptors sampled from the training videos only
(targets/idt_fit.py), and every video of every split is then encoded with it
(descriptors/encodings.py), so no val / test video shapes its own target's coordinates.

  PCA      per descriptor part (IDT: traj, HOG, HOF, MBHx, MBHy), keep round(fraction x dims)
           directions (fraction 0.5: 426 -> 213 dims, the paper's halving), eigenvectors of the
           part's covariance, largest first, each oriented so its largest-|.| entry is positive.
  k-means  k-means++ seeding, then Lloyd iterations; an empty cluster is re-seeded at the point
           farthest from its centre.
  GMM      diagonal, initialised from k-means (weights = cluster shares, variances = cluster
           variances), EM iterations; variances floored at `var_floor` x the data's variance
           per dimension (keeps a component on a few near-identical points finite).

Pure numpy, seeded: the same descriptors and seed give the same codebook.
"""
import dataclasses
import json
import os

import numpy as np

from halluc_jax.descriptors import encodings

ENCODINGS = ('bow', 'fv1', 'fv2')  # stream kinds: BoW, FV first-order half, second-order half


def pca_fit(x, dims):
  """(mean [D], components [dims, D]) of [N, D] rows: top covariance eigenvectors."""
  x = np.asarray(x, np.float64)
  mean = x.mean(0)
  cov = np.cov(x - mean, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
  values, vectors = np.linalg.eigh(cov)
  comps = vectors[:, ::-1][:, :dims].T  # eigh is ascending
  signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
  return mean, comps * np.where(signs == 0, 1.0, signs)[:, None]


def kmeans_fit(x, k, iters=25, seed=0):
  """[k, D] centres of [N, D] rows (k-means++ seeding, Lloyd iterations)."""
  x = np.asarray(x, np.float64)
  if len(x) < k:
    raise ValueError(f'kmeans_fit: {len(x)} descriptors for {k} centres; sample more videos or '
                     f'lower the codebook size.')
  rng = np.random.default_rng(seed)
  centres = [x[rng.integers(len(x))]]
  closest = encodings.squared_distances(x, np.asarray(centres))[:, 0]
  for _ in range(1, k):
    total = closest.sum()
    pick = rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x))
    centres.append(x[pick])
    closest = np.minimum(closest, encodings.squared_distances(x, x[pick][None])[:, 0])
  centres = np.asarray(centres)
  for _ in range(iters):
    labels = encodings.nearest(x, centres)
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros_like(centres)
    np.add.at(sums, labels, x)
    new = sums / np.maximum(counts, 1)[:, None]
    for empty in np.nonzero(counts == 0)[0]:
      dist = ((x - new[labels]) ** 2).sum(1)
      new[empty] = x[dist.argmax()]
      labels[dist.argmax()] = empty
    if np.allclose(new, centres):
      centres = new
      break
    centres = new
  return centres


def gmm_fit(x, k, iters=30, seed=0, var_floor=1e-3):
  """(weights [k], means [k, D], variances [k, D]) of a diagonal GMM fitted by EM on [N, D]."""
  x = np.asarray(x, np.float64)
  centres = kmeans_fit(x, k, iters=10, seed=seed)
  labels = encodings.nearest(x, centres)
  floor = var_floor * np.maximum(x.var(0), 1e-12)
  post = np.eye(k)[labels]
  for step in range(iters + 1):
    if step:  # E-step after the k-means initialisation
      post = encodings.gmm_posteriors(x, weights, means, variances)
    count = post.sum(0) + 1e-10
    weights = count / count.sum()
    means = (post.T @ x) / count[:, None]
    variances = np.maximum((post.T @ (x * x)) / count[:, None] - means * means, floor)
  return weights, means, variances


@dataclasses.dataclass
class Codebook:
  """A fitted codebook: per-part PCA, k-means words and a diagonal GMM, in the PCA space."""
  parts: tuple  # [(name, dims)] of the input descriptor's parts, in column order
  pca: dict  # part -> (mean [dims], components [k_part, dims])
  words: np.ndarray  # [K_bow, D'] k-means centres
  gmm: tuple  # (weights [K], means [K, D'], variances [K, D'])
  alpha: float = 0.5  # power of the improved BoW / FV normalisation

  def reduce(self, x):
    """[N, D'] PCA projections of [N, sum dims] descriptors, part by part."""
    out, start = [], 0
    for name, dims in self.parts:
      mean, comps = self.pca[name]
      out.append(encodings.pca_apply(x[:, start:start + dims], mean, comps))
      start += dims
    return np.concatenate(out, axis=1)

  def encode(self, x, kind):
    """The video-level vector of descriptors x [N, sum dims]: kind in ENCODINGS."""
    z = self.reduce(np.asarray(x, np.float64))
    if kind == 'bow':
      return encodings.bow_histogram(z, self.words, self.alpha)
    if kind in ('fv1', 'fv2'):
      return encodings.fisher_vector(z, *self.gmm, order='first' if kind == 'fv1' else 'second',
                                     alpha=self.alpha)
    raise ValueError(f'Codebook.encode: kind={kind!r}: expected one of {ENCODINGS}.')

  def dims(self):
    """{kind: length of its encoding}."""
    reduced = sum(len(self.pca[name][1]) for name, _ in self.parts)
    return {'bow': len(self.words), 'fv1': len(self.gmm[0]) * reduced,
            'fv2': len(self.gmm[0]) * reduced}

  def save(self, path, fingerprint):
    """Writes an .npz with the fingerprint of what it was fitted from (atomic replace)."""
    arrays = {'words': self.words, 'gmm_weights': self.gmm[0], 'gmm_means': self.gmm[1],
              'gmm_variances': self.gmm[2]}
    for name, _ in self.parts:
      arrays[f'pca_mean:{name}'], arrays[f'pca_components:{name}'] = self.pca[name]
    meta = {'parts': [list(p) for p in self.parts], 'alpha': self.alpha,
            'fingerprint': fingerprint}
    tmp = path + '.tmp.npz'
    np.savez(tmp, meta=json.dumps(meta), **arrays)
    os.replace(tmp, path)

  @classmethod
  def load(cls, path):
    """(Codebook, fingerprint) of a file written by `save`."""
    with np.load(path) as data:
      meta = json.loads(str(data['meta']))
      parts = tuple((name, int(dims)) for name, dims in meta['parts'])
      pca = {name: (data[f'pca_mean:{name}'], data[f'pca_components:{name}'])
             for name, _ in parts}
      book = cls(parts, pca, data['words'],
                 (data['gmm_weights'], data['gmm_means'], data['gmm_variances']),
                 float(meta['alpha']))
    return book, meta['fingerprint']


def fit_codebook(x, parts, pca_fraction=0.5, bow_words=256, gmm_components=16, kmeans_iters=25,
                 gmm_iters=30, seed=0, alpha=0.5):
  """A Codebook fitted on [N, sum dims] training descriptors with the given part layout."""
  x = np.asarray(x, np.float64)
  pca, start = {}, 0
  for name, dims in parts:
    pca[name] = pca_fit(x[:, start:start + dims], max(1, int(round(pca_fraction * dims))))
    start += dims
  book = Codebook(tuple(parts), pca, np.zeros((0, 0)), (None, None, None), alpha)
  z = book.reduce(x)
  book.words = kmeans_fit(z, bow_words, kmeans_iters, seed)
  book.gmm = gmm_fit(z, gmm_components, gmm_iters, seed + 1)
  return book
