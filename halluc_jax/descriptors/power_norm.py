"""Power normalisations (docs/method.md §3.3): AsinhE, SigmE, AxMin and Gamma.

Each is a pure function of an array; numpy inputs give numpy outputs (float64 offline maths),
jax inputs give jax outputs (stream heads). The l2 norm in SigmE and AxMin is taken over the
last axis, so a batch of descriptors [..., d] is normalised row by row.
"""
from halluc_jax.descriptors._xp import array_namespace

PN_NAMES = ('asinhe', 'sigme', 'axmin', 'gamma', 'none')


def asinhe(x, gamma=100.0):
  """AsinhE: arcsinh(gamma * x) / arcsinh(gamma); odd, monotone, unbounded."""
  xp = array_namespace(x)
  return xp.arcsinh(gamma * x) / xp.arcsinh(xp.asarray(gamma, dtype=x.dtype))


def sigme(x, eta=50.0, eps=1e-6):
  """SigmE: 2 / (1 + exp(-eta x / (||x|| + eps))) - 1 = tanh(eta x / (2 (||x|| + eps)))."""
  xp = array_namespace(x)
  norm = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))
  return xp.tanh(eta * x / (2.0 * (norm + eps)))


def axmin(x, eta=30.0, eps=1e-6):
  """AxMin: sign(x) * min(eta |x| / (||x|| + eps), 1), a clipped linear ramp."""
  xp = array_namespace(x)
  norm = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))
  return xp.sign(x) * xp.minimum(eta * xp.abs(x) / (norm + eps), 1.0)


def gamma_pn(x, gamma=0.5):
  """Gamma: sign(x) |x|^gamma, 0 < gamma <= 1."""
  xp = array_namespace(x)
  return xp.sign(x) * xp.abs(x) ** gamma


def power_normalize(x, name='asinhe', **params):
  """Applies the power normalisation called `name` with its parameters.

  Args:
    x: array [..., d].
    name: one of PN_NAMES.
    **params: the normalisation's parameters (gamma for asinhe/gamma, eta and eps otherwise).

  Returns:
    The normalised array, same shape and dtype.
  """
  fns = {'asinhe': asinhe, 'sigme': sigme, 'axmin': axmin, 'gamma': gamma_pn}
  if name == 'none':
    return x
  if name not in fns:
    raise ValueError(f'Unknown power normalisation {name!r}; expected one of {PN_NAMES}.')
  return fns[name](x, **params)
