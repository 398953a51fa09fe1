"""Ground-truth target of a hallucination stream: sketch(PN(l2-normalised descriptor)).

docs/method.md §3.7 step 7 and 9.10: a raw per-video descriptor (ODF, SDF, flow features, ...) is
l2-normalised, power-normalised (SigmE for ODF/SDF by default), then count-sketched to d with a
sketch matrix fixed per modality, so every stream regresses a d-dimensional vector.
"""
import zlib

import numpy as np

from halluc_jax.descriptors import power_norm
from halluc_jax.descriptors.sketch import CountSketch


def modality_seed(modality, base_seed=0):
  """A stable seed per modality name (crc32, identical across runs and machines)."""
  return (zlib.crc32(modality.encode('utf-8')) + int(base_seed)) % (2 ** 31 - 1)


def modality_sketch(modality, d_in, d_out, base_seed=0):
  """The fixed CountSketch of one modality, e.g. modality_sketch('odf/det1', 8498, 128)."""
  return CountSketch(d_in=int(d_in), d_out=int(d_out), seed=modality_seed(modality, base_seed))


def l2_normalize(vec):
  """vec / ||vec||_2 over the last axis; all-zero rows stay zero (a masked, absent target)."""
  vec = np.asarray(vec, np.float64)
  norm = np.linalg.norm(vec, axis=-1, keepdims=True)
  return vec / np.where(norm > 0, norm, 1.0)


def gt_target(vec, sketch, eta=50.0, pn='sigme', eps=1e-6, gamma=100.0):
  """Sketched, power-normalised ground truth of a raw descriptor.

  Args:
    vec: raw descriptor [..., d_in] (float64 offline).
    sketch: the modality's CountSketch (d_in -> d_out), or None to skip sketching.
    eta: SigmE / AxMin parameter eta'.
    pn: power normalisation name (see power_norm.PN_NAMES); 'sigme' for ODF/SDF.
    eps: SigmE / AxMin epsilon'.
    gamma: AsinhE / Gamma parameter.

  Returns:
    float64 [..., d_out] (or [..., d_in] without a sketch).
  """
  vec = l2_normalize(vec)
  if sketch is not None and vec.shape[-1] != sketch.d_in:
    raise ValueError(f'gt_target: descriptor has {vec.shape[-1]} dims but the sketch expects '
                     f'{sketch.d_in}.')
  if pn in ('sigme', 'axmin'):
    params = {'eta': eta, 'eps': eps}
  elif pn in ('asinhe', 'gamma'):
    params = {'gamma': gamma}
  else:
    params = {}
  normalised = power_norm.power_normalize(vec, pn, **params)
  return normalised if sketch is None else sketch(normalised)
