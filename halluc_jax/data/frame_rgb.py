"""Decoded PyAV frames -> upright RGB uint8 at the output size (`config.data.rgb_conversion`).

The conversion half of data/video.py's reader: swscale's rgb24 for every pixel format (the
default, which the committed results used), or OpenCV's I420 formula for plain yuv420p frames,
~10x cheaper on small frames (README 'Input pipeline').
"""
import cv2
import numpy as np


def output_size(height, width, resize_short):
  if not resize_short:
    return height, width
  scale = resize_short / min(height, width)
  return max(1, round(height * scale)), max(1, round(width * scale))


RGB_CONVERSIONS = ('swscale', 'opencv')
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full-range YUV, which OpenCV's I420 formula does not assume


def opencv_rgb(frame, height, width):
  """cv2's limited-range BT.601 I420 -> RGB (swscale's default matrix too, rounded otherwise:
  within 3 levels) and a cv2 resize; ~10x cheaper than swscale's rgb24 on small frames.
  None when the frame is not plain even-sized limited-range yuv420p."""
  if (frame.format.name != 'yuv420p' or frame.width % 2 or frame.height % 2
      or getattr(frame, 'color_range', 0) == _JPEG_RANGE):
    return None
  rgb = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
  if (height, width) != rgb.shape[:2]:
    shrink = height < frame.height
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink
                     else cv2.INTER_LINEAR)
  return rgb


def swscale_rgb(frame, height, width):
  if (height, width) == (frame.height, frame.width):
    return frame.to_ndarray(format='rgb24')
  # swscale converts and resizes in one pass: cheaper than its RGB then cv2.resize.
  shrink = height < frame.height
  return frame.to_ndarray(format='rgb24', width=width, height=height,
                          interpolation='AREA' if shrink else 'BILINEAR')


def to_rgb(frame, rotation, size, conversion='swscale'):
  """RGB uint8 of any pix_fmt (gray, yuv444p, 10-bit, rgb24), resized to `size`, upright.

  `conversion` 'opencv' converts plain yuv420p frames with cv2 (`opencv_rgb`), the rest with
  swscale as 'swscale' does all of them (the default, which the committed results used).
  """
  height, width = size if rotation % 180 == 0 else size[::-1]  # Size before turning upright.
  rgb = opencv_rgb(frame, height, width) if conversion == 'opencv' else None
  if rgb is None:
    rgb = swscale_rgb(frame, height, width)
  if rotation:
    rgb = np.rot90(rgb, k=-rotation // 90)  # Negative k turns clockwise.
  return rgb
