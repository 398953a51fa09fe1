"""ViT size table and the variant-string decoder ('B/16x2' -> width, depth, heads, patch, tubelet).

Sizes follow the ViT paper and big_vision's `decode_variant` (plus ViT-g of VideoMAE V2), so a
config names a backbone by one string instead of copying widths and depths.
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
