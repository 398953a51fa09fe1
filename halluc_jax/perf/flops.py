"""Model FLOPs of a traced JAX program, counted from its jaxpr: the same figure on every backend.

XLA's cost analysis is not a usable MFU numerator on its own: on GPU the compiled program hands
its matrix products to cuBLAS/cuDNN custom calls, which the analysis does not count (measured on
an H200 for ViViT-B/16x2: 4.0 of ~35 TFLOPs per step), jax 0.11 has no cost analysis of a
lowered program there, and on every backend a `scan` body (gradient accumulation) is counted
once, not once per iteration. Counting the matrix products (`dot_general`) and convolutions of
the jaxpr, with each loop body times its trip count, gives the conventional model FLOPs of MFU
(PaLM appendix B counts matmuls only) and includes remat's recompute, since the backward pass
re-runs the checkpointed forward in the jaxpr itself.
"""
import logging
import math

_LOOP_WARNED = []


def _dot_flops(eqn):
  (lhs_contract, _), _ = eqn.params['dimension_numbers']
  lhs = eqn.invars[0].aval.shape
  out = eqn.outvars[0].aval.shape
  return 2.0 * math.prod(out) * math.prod(lhs[i] for i in lhs_contract)


def _conv_flops(eqn):
  # Each output element is a dot product over (input features / groups) x kernel window.
  rhs = eqn.invars[1].aval.shape
  spec = eqn.params['dimension_numbers']
  out_feature_dim = spec.rhs_spec[0]
  kernel_elems = math.prod(rhs) // rhs[out_feature_dim]
  # A strided conv's input gradient is a conv over the cotangent dilated by the stride
  # (lhs_dilation): of each window, only 1 / prod(dilation) of the taps meet a real element,
  # the rest meet inserted zeros. Counting those would bill the transpose at prod(stride)
  # times its forward conv's multiply-adds.
  dilation = math.prod(eqn.params.get('lhs_dilation') or (1,))
  return 2.0 * math.prod(eqn.outvars[0].aval.shape) * kernel_elems / dilation


def _sub_jaxprs(value):
  """Jaxprs held in an equation parameter (a jaxpr, a closed jaxpr, or a tuple of them)."""
  if hasattr(value, 'eqns'):
    return [value]
  if hasattr(value, 'jaxpr') and hasattr(value.jaxpr, 'eqns'):
    return [value.jaxpr]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def jaxpr_flops(jaxpr):
  """Matrix-product and convolution FLOPs (2 per multiply-add) of a jaxpr or closed jaxpr."""
  jaxpr = getattr(jaxpr, 'jaxpr', jaxpr)
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == 'dot_general':
      total += _dot_flops(eqn)
    elif name == 'conv_general_dilated':
      total += _conv_flops(eqn)
    subs = {k: _sub_jaxprs(v) for k, v in eqn.params.items()}
    subs = {k: v for k, v in subs.items() if v}
    if not subs:
      continue
    if name == 'cond':  # one branch runs: count the most expensive
      total += max(jaxpr_flops(j) for j in subs['branches'])
    elif name == 'while':  # trip count unknown at trace time: the body counted once
      if not _LOOP_WARNED:
        _LOOP_WARNED.append(True)
        logging.warning('FLOP count: a while loop is counted as one iteration.')
      total += sum(jaxpr_flops(j) for js in subs.values() for j in js)
    else:
      repeat = int(eqn.params.get('length', 1)) if name == 'scan' else 1
      total += repeat * sum(jaxpr_flops(j) for js in subs.values() for j in js)
  return total


def traced_flops(jitted, *args):
  """Model FLOPs of one call of a jitted function on (abstract) arguments, all devices."""
  return jaxpr_flops(jitted.trace(*args).jaxpr)
