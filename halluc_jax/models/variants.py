"""Backbone variant strings, decoded once into frozen size records.

* ViViT: 'B/16x2' -> width, depth, heads, patch, tubelet (`decode_variant`). Sizes follow the
  ViT paper and big_vision's `decode_variant` (plus ViT-g of VideoMAE V2).
* I3D: 'full', 'mini' or 'w0.25/111' -> width multiplier and Inception blocks kept per stage
  (`decode_i3d_variant`).

A config names a backbone by one string instead of copying widths and depths.
"""
import dataclasses
import re

# name: (width, depth, mlp_dim, num_heads)
_SIZES = {
    'Ti': (192, 12, 768, 3),
    'S': (384, 12, 1536, 6),
    'M': (512, 12, 2048, 8),
    'B': (768, 12, 3072, 12),
    'L': (1024, 24, 4096, 16),
    'H': (1280, 32, 5120, 16),
    'g': (1408, 40, 6144, 16),
}
_VARIANT_RE = re.compile(r'^(?P<size>[A-Za-z]+)/(?P<patch>\d+)(x(?P<tubelet>\d+))?$')


@dataclasses.dataclass(frozen=True)
class ViTSize:
  """Hyper-parameters of a ViViT encoder.

  Attributes:
    width: token embedding size D.
    depth: number of transformer blocks (spatial blocks for the factorised encoder).
    mlp_dim: hidden size of the MLP in each block.
    num_heads: attention heads; width must be divisible by it.
    patch_size: spatial patch side in pixels.
    tubelet: temporal extent of a tubelet in frames.
  """
  width: int
  depth: int
  mlp_dim: int
  num_heads: int
  patch_size: int
  tubelet: int

  def __post_init__(self):
    for field in dataclasses.fields(self):
      if int(getattr(self, field.name)) <= 0:
        raise ValueError(f'ViTSize.{field.name} must be positive, got {getattr(self, field.name)}.')
    if self.width % self.num_heads:
      raise ValueError(f'width {self.width} is not divisible by num_heads {self.num_heads}.')


def decode_variant(variant, **overrides):
  """Decodes a variant string such as 'B/16x2' ('size/patch x tubelet'; tubelet defaults to 2).

  Args:
    variant: '<size>/<patch>[x<tubelet>]' with size in {Ti, S, M, B, L, H, g}.
    **overrides: any ViTSize field to replace (e.g. depth=4 for a shallow CPU model); None values
      are ignored so configs can leave fields unset.

  Returns:
    A ViTSize.
  """
  match = _VARIANT_RE.match(str(variant).strip())
  if match is None or match.group('size') not in _SIZES:
    raise ValueError(f'Bad backbone variant {variant!r}: expected "<size>/<patch>[x<tubelet>]" '
                     f'with size in {sorted(_SIZES)}, e.g. "B/16x2".')
  width, depth, mlp_dim, num_heads = _SIZES[match.group('size')]
  fields = dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=num_heads,
                patch_size=int(match.group('patch')), tubelet=int(match.group('tubelet') or 2))
  unknown = set(overrides) - set(fields)
  if unknown:
    raise ValueError(f'Unknown backbone override(s) {sorted(unknown)}; allowed: {sorted(fields)}.')
  fields.update({k: int(v) for k, v in overrides.items() if v is not None})
  return ViTSize(**fields)


# Inception blocks of the published I3D in stages 3, 4 and 5 (Mixed_3b-3c, 4b-4f, 5b-5c).
I3D_STAGE_BLOCKS = (2, 5, 2)
_I3D_ALIASES = {'full': 'w1', 'mini': 'w0.25/111'}
_I3D_RE = re.compile(r'^w(?P<mult>\d+(\.\d*)?|\.\d+)(/(?P<blocks>\d{3}))?$')


@dataclasses.dataclass(frozen=True)
class I3DSize:
  """Hyper-parameters of an I3D backbone (Inception-v1 inflated to 3D).

  Attributes:
    width_mult: every convolution has round(width_mult * published filters) filters (at least
      1), so X(rgb) has about 1024 * width_mult channels.
    blocks: Inception blocks kept in stages 3, 4 and 5, at most (2, 5, 2); a stage keeps its
      *last* blocks (e.g. 1 in stage 4 keeps Mixed_4f), so every stage still ends with the
      published block and the next stage sees the published input layout.
  """
  width_mult: float = 1.0
  blocks: tuple = I3D_STAGE_BLOCKS

  def __post_init__(self):
    if not self.width_mult > 0:
      raise ValueError(f'I3DSize.width_mult must be positive, got {self.width_mult}.')
    blocks = tuple(int(b) for b in self.blocks)
    if len(blocks) != 3 or any(not 1 <= b <= n for b, n in zip(blocks, I3D_STAGE_BLOCKS)):
      raise ValueError(f'I3DSize.blocks={self.blocks}: expected 3 counts, each between 1 and '
                       f'{I3D_STAGE_BLOCKS} (stages 3, 4, 5).')
    object.__setattr__(self, 'blocks', blocks)

  def filters(self, published):
    """Filters of a convolution that has `published` filters in the full network."""
    return max(1, int(published * self.width_mult + 0.5))


def decode_i3d_variant(variant, **overrides):
  """Decodes an I3D variant string.

  Grammar: 'full' (the published network, = 'w1') | 'mini' (= 'w0.25/111', the CPU variant) |
  'w<mult>[/<b3><b4><b5>]': width multiplier and, optionally, the Inception blocks kept in
  stages 3, 4 and 5 as three digits (the published network is 'w1/252'). Examples: 'w0.5'
  (half width, every block), 'w0.25/111' (quarter width, Mixed_3c, Mixed_4f and Mixed_5c only).

  Args:
    variant: the string above.
    **overrides: I3DSize fields to replace (width_mult, blocks); None values are ignored.

  Returns:
    An I3DSize.
  """
  text = _I3D_ALIASES.get(str(variant).strip(), str(variant).strip())
  match = _I3D_RE.match(text)
  if match is None:
    raise ValueError(f'Bad I3D variant {variant!r}: expected "full", "mini" or '
                     '"w<mult>[/<b3><b4><b5>]", e.g. "w0.25" or "w0.25/111".')
  blocks = match.group('blocks')
  fields = dict(width_mult=float(match.group('mult')),
                blocks=tuple(int(b) for b in blocks) if blocks else I3D_STAGE_BLOCKS)
  unknown = set(overrides) - set(fields)
  if unknown:
    raise ValueError(f'Unknown I3D backbone override(s) {sorted(unknown)}; allowed: '
                     f'{sorted(fields)}.')
  fields.update({k: v for k, v in overrides.items() if v is not None})
  return I3DSize(**fields)
