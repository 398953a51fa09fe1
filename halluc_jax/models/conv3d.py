"""3-D convolutions as sums of 2-D ones, shared by the ViViT conv stem and I3D (docs/method.md).

XLA on CPU runs 3-D convolutions on a slow generic path; the same sums as one 2-D convolution per
temporal tap go to its Eigen kernels. Both models call `conv3d_per_tap`, so the two agree on
padding and on which frames each tap reads.
"""

import jax
import jax.numpy as jnp


def same_padding(size, kernel, stride):
  """TF/lax 'SAME' (lo, hi) padding of one axis: the extra element goes after."""
  total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv3d_per_tap(x, kernel, strides):
  """lax's 'SAME' conv3d of x [B, T, H, W, C] by kernel [kt, kh, kw, C, O], as kt 2-D convs.

  Each temporal tap is one 2-D conv over the frames it reads (time folded into the batch), and
  the taps are summed: the same sums as the 3-D conv. XLA on CPU runs 3-D convs on a slow
  generic path, and the input gradient of a strided one through a dilated conv (measured at
  batch 8, forward + both gradients of a 24 -> 48 channel 3x3x3 layer at 8x32x32: 1.9 s as one
  3-D conv, 0.29 s as 2-D convs); 2-D convs go to its Eigen kernels. Same sums on every
  backend, so there is no per-backend switch.
  """
  steps, stride = kernel.shape[0], strides[0]
  out_t = -(-x.shape[1] // stride)
  x = jnp.pad(x, ((0, 0), same_padding(x.shape[1], steps, stride), (0, 0), (0, 0), (0, 0)))
  y = 0
  for tap in range(steps):
    frames = jax.lax.slice_in_dim(x, tap, tap + (out_t - 1) * stride + 1, stride, axis=1)
    z = jax.lax.conv_general_dilated(
        frames.reshape((-1,) + frames.shape[2:]), kernel[tap], strides[1:], 'SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = y + z.reshape(frames.shape[:2] + z.shape[1:])
  return y
