"""Position-table resizing (halluc_jax/models/converters/posemb.py) and its use by init_from's
'videomae' reader: against PyTorch's interpolate, identity on equal grids, grid inference."""
import numpy as np
import pytest

from halluc_jax import init_from
from halluc_jax.models.converters import posemb
import configs_for_tests  # pylint: disable=g-bad-import-order
from test_init_from import _checkpoint  # pylint: disable=g-bad-import-order

WIDTH = 6


def _table(grid, seed=0):
  return np.random.default_rng(seed).standard_normal((1, int(np.prod(grid)), WIDTH)).astype(np.float32)


def _torch_resize(table, grid, new_grid, spatial):
  """Direct computation: torch linear over time, then torch `spatial` over (h, w)."""
  torch = pytest.importorskip('torch')
  f = torch.nn.functional
  x = torch.from_numpy(table.reshape(grid + (WIDTH,))).double()  # [t, h, w, D]
  t, h, w = grid
  x = x.permute(1, 2, 3, 0).reshape(1, h * w * WIDTH, t)  # time as the 1-D signal
  x = f.interpolate(x, size=new_grid[0], mode='linear', align_corners=False)
  x = x.reshape(h, w, WIDTH, new_grid[0]).permute(3, 2, 0, 1)  # [t', D, h, w]
  x = f.interpolate(x, size=new_grid[1:], mode='bicubic' if spatial == 'bicubic' else 'bilinear',
                    align_corners=False, antialias=False)
  return x.permute(0, 2, 3, 1).reshape(1, -1, WIDTH).numpy()


@pytest.mark.parametrize('spatial', posemb.SPATIAL_MODES)
@pytest.mark.parametrize('grid,new_grid', [((2, 4, 4), (2, 7, 7)), ((2, 7, 7), (2, 4, 4)),
                                           ((4, 3, 5), (2, 6, 3)), ((2, 3, 3), (5, 3, 3))])
def test_resize_is_torch_interpolate_align_corners_false(grid, new_grid, spatial):
  table = _table(grid)
  got = posemb.resize(table, grid, new_grid, spatial)
  want = _torch_resize(table, grid, new_grid, spatial)
  assert got.shape == (1, int(np.prod(new_grid)), WIDTH)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_equal_grids_are_the_identity_and_matrices_too():
  table = _table((2, 3, 3))
  np.testing.assert_array_equal(posemb.resize(table, (2, 3, 3), (2, 3, 3)), table)
  for mode in posemb.SPATIAL_MODES:
    np.testing.assert_allclose(posemb.interpolation_matrix(5, 5, mode), np.eye(5), atol=1e-12)
    # Rows sum to one: a constant table stays constant.
    np.testing.assert_allclose(posemb.interpolation_matrix(3, 8, mode).sum(1), 1.0)


def test_source_grid_inferred_given_or_a_clear_error():
  assert posemb.source_grid(8 * 14 * 14, (8, 7, 7)) == (8, 14, 14)
  assert posemb.source_grid(24, (2, 2, 2), posemb.parse_grid('2,3,4')) == (2, 3, 4)
  assert posemb.source_grid(12, (2, 2, 2), posemb.parse_grid('3,4')) == (1, 3, 4)
  assert posemb.parse_grid('') is None
  with pytest.raises(ValueError, match=r'36-entry.*\(1, 6, 6\), \(4, 3, 3\).*source_grid'):
    posemb.source_grid(36, (2, 2, 2))
  with pytest.raises(ValueError, match='holds 8 positions; the checkpoint table has 12'):
    posemb.source_grid(12, (2, 2, 2), (2, 2, 2))
  with pytest.raises(ValueError, match='source_grid'):
    posemb.parse_grid('2x3x4')


def _config(posemb_kind='learned', source_grid=''):
  c = configs_for_tests.load('default', 'tiny')  # grid (4 frames / 2, 32 / 16, 32 / 16)
  b = c.model.backbone
  b.stem, b.posemb, b.gelu = 'patch', posemb_kind, 'erf'
  c.init_from.source_grid = source_grid
  return c


def _videomae_file(tmp_path, config, table=None):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  size = init_from._vivit_size(config.model.backbone, 'videomae')  # pylint: disable=protected-access
  state = _checkpoint(size.width, size.depth, size.mlp_dim, size.patch_size, size.tubelet)
  if table is not None:
    state['pos_embed'] = table
  path = str(tmp_path / 'videomae.safetensors')
  save_file(state, path)
  return path


def test_videomae_reader_resizes_a_learned_table_to_the_model_grid(tmp_path):
  config = _config()
  width = init_from._vivit_size(config.model.backbone, 'videomae').width  # pylint: disable=protected-access
  table = np.random.default_rng(0).standard_normal((1, 2 * 3 * 3, width)).astype(np.float32)
  loaded, resized = init_from.FORMATS['videomae'](_videomae_file(tmp_path, config, table), config)
  got = loaded['params']['posemb']['pos_embedding']
  np.testing.assert_allclose(got, posemb.resize(table, (2, 3, 3), (2, 2, 2)), rtol=1e-6)
  assert got.shape == (1, 8, width) and resized == [
      'posemb.pos_embedding (2x3x3 -> 2x2x2, linear in time, bicubic in space)']
  # Matching grid: loaded as is, nothing resized.
  same = np.random.default_rng(1).standard_normal((1, 8, width)).astype(np.float32)
  loaded, resized = init_from.FORMATS['videomae'](_videomae_file(tmp_path, config, same), config)
  np.testing.assert_array_equal(loaded['params']['posemb']['pos_embedding'], same)
  assert resized == []
  # An explicit grid wins over inference: 4 frames of 1x2 is not a square image.
  config = _config(source_grid='4,1,2')
  loaded, resized = init_from.FORMATS['videomae'](_videomae_file(tmp_path, config, same), config)
  np.testing.assert_allclose(loaded['params']['posemb']['pos_embedding'],
                             posemb.resize(same, (4, 1, 2), (2, 2, 2)), rtol=1e-6)
  assert resized[0].startswith('posemb.pos_embedding (4x1x2 -> 2x2x2')


def test_videomae_reader_posemb_kind_errors(tmp_path):
  config = _config('sincos')
  width = init_from._vivit_size(config.model.backbone, 'videomae').width  # pylint: disable=protected-access
  learned = _videomae_file(tmp_path, config, np.zeros((1, 8, width), np.float32))
  with pytest.raises(ValueError, match="posemb='learned'"):
    init_from.FORMATS['videomae'](learned, config)
  with pytest.raises(ValueError, match="posemb='sincos'"):
    init_from.FORMATS['videomae'](_videomae_file(tmp_path, config), _config('learned'))
  with pytest.raises(ValueError, match='27-entry.*source_grid'):
    init_from.FORMATS['videomae'](
        _videomae_file(tmp_path, config, np.zeros((1, 27, width), np.float32)), _config())
