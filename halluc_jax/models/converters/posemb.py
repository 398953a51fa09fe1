"""Fitting a checkpoint's learned position table [1, N, D] to another token grid.

A table learned on a grid (t, h, w) (time, height, width in tokens, flattened in that order as
our ViViT flattens its tokens) is resized to the model's grid (t', h', w') separably: linear
interpolation over time, bicubic (or linear) over space, all with half-pixel centres (PyTorch's
`interpolate(..., align_corners=False)` without antialiasing, so downsampling is plain
interpolation). Bicubic over space is what VideoMAE's fine-tuning and timm do for a new
resolution (timm also antialiases when shrinking a table, which this does not); scenic and big_vision zoom linearly with corners aligned instead, and scenic keeps
the temporal size by tiling an image table over time (`tile`). docs/method.md 'Pretrained weights'.
"""
import numpy as np

SPATIAL_MODES = ('bicubic', 'linear')
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) bicubic convolution constant


def _cubic(x):
  """Keys' cubic convolution weight of a tap at distance |x| (PyTorch's coefficients)."""
  x = np.abs(x)
  a = _CUBIC_A
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def interpolation_matrix(size_in, size_out, mode):
  """[size_out, size_in] weights of a 1-D resize with half-pixel centres (align_corners=False).

  Args:
    size_in: input length.
    size_out: output length.
    mode: 'linear' (source positions below 0 clamped to 0, as PyTorch) or 'bicubic' (taps
      beyond the border read the border value, as PyTorch).

  Returns:
    float64 matrix M with out = M @ in; the identity when size_in == size_out.
  """
  if mode not in SPATIAL_MODES:
    raise ValueError(f'Unknown interpolation {mode!r}; expected one of {SPATIAL_MODES}.')
  m = np.zeros((size_out, size_in))
  src = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
  if mode == 'linear':
    src = np.maximum(src, 0.0)
    lo = np.floor(src).astype(int)
    frac = src - lo
    for i, (j, f) in enumerate(zip(lo, frac)):
      m[i, min(j, size_in - 1)] += 1 - f
      m[i, min(j + 1, size_in - 1)] += f
    return m
  lo = np.floor(src).astype(int)
  for i, (j, s) in enumerate(zip(lo, src)):
    for k in range(j - 1, j + 3):
      m[i, min(max(k, 0), size_in - 1)] += _cubic(s - k)
  return m


def resize(table, grid, new_grid, spatial='bicubic'):
  """The learned table on `grid` resized to `new_grid`.

  Args:
    table: [1, t*h*w, D] (or [t*h*w, D]) array, tokens in (t, h, w) order.
    grid: (t, h, w) of the table.
    new_grid: (t', h', w') wanted.
    spatial: 'bicubic' or 'linear' over h and w; time is always linear.

  Returns:
    float32 [1, t'*h'*w', D]; the table itself (as float32) when the grids are equal.
  """
  table = np.asarray(table, np.float32)
  grid, new_grid = tuple(int(g) for g in grid), tuple(int(g) for g in new_grid)
  width = table.shape[-1]
  if int(np.prod(grid)) * width != table.size:
    raise ValueError(f'A position table of {table.size // width} entries is not on grid {grid}.')
  if grid == new_grid:
    return table.reshape(1, -1, width)
  x = table.reshape(grid + (width,)).astype(np.float64)
  for axis, mode in enumerate(('linear', spatial, spatial)):
    if grid[axis] != new_grid[axis]:
      x = np.moveaxis(np.tensordot(interpolation_matrix(grid[axis], new_grid[axis], mode), x,
                                   axes=(1, axis)), 0, axis)
  return x.reshape(1, -1, width).astype(np.float32)


def parse_grid(text):
  """'t,h,w' (or 'h,w') -> tuple of ints; '' -> None (infer)."""
  text = str(text or '').strip()
  if not text:
    return None
  try:
    grid = tuple(int(v) for v in text.split(','))
  except ValueError as e:
    raise ValueError(f"config.init_from.source_grid={text!r}; expected 't,h,w', e.g. '8,14,14'.") from e
  if len(grid) not in (2, 3) or min(grid) < 1:
    raise ValueError(f"config.init_from.source_grid={text!r}; expected 't,h,w', e.g. '8,14,14'.")
  return grid


def source_grid(num_positions, model_grid, given=None):
  """The (t, h, w) grid a checkpoint's table of `num_positions` entries was learned on.

  Args:
    num_positions: N of the table (without a class-token entry).
    model_grid: (t', h', w') of the model.
    given: an explicit grid (config.init_from.source_grid parsed; 2 entries = an image table,
      t = 1), or None to infer: the model's temporal size and a square spatial grid.

  Returns:
    (t, h, w) with t * h * w == num_positions.

  Raises:
    ValueError: the grid does not hold N entries, or none can be inferred (the error names N
      and the square grids (t, s, s) that would hold it).
  """
  if given is not None:
    grid = (1,) + tuple(given) if len(given) == 2 else tuple(given)
    if int(np.prod(grid)) != num_positions:
      raise ValueError(f'config.init_from.source_grid={grid} holds {int(np.prod(grid))} '
                       f'positions; the checkpoint table has {num_positions}.')
    return grid
  t = int(model_grid[0])
  side = int(round(np.sqrt(num_positions / t)))
  if t * side * side == num_positions:
    return (t, side, side)
  candidates = [(tc, int(round(np.sqrt(num_positions / tc)))) for tc in range(1, num_positions + 1)
                if num_positions % tc == 0]
  candidates = [(tc, s, s) for tc, s in candidates if tc * s * s == num_positions]
  raise ValueError(f'Cannot infer the grid of a {num_positions}-entry position table for a '
                   f'model grid {tuple(model_grid)} (same time size and a square image assumed); '
                   f"square candidates {candidates}: set config.init_from.source_grid='t,h,w'.")
