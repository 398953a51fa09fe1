"""Visual check of the descriptor sources on one video: boxes, saliency maps, optical flow.

  python -m halluc_jax.targets.visualize --video FILE --out descriptors.png [--config configs/default.py
      --num_frames 4]

One row per sampled frame; one column per built-in stream of `config.extract.stream` (all of
them, not only those `config.extract.streams` runs): the frame with each detector's boxes
(class name and score), each saliency map, and the flow to the next frame in HSV colour coding
(hue = direction, brightness = speed; a colour wheel sits in the column title's corner).
"""
import matplotlib

matplotlib.use('Agg')  # headless: files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import cv2  # pylint: disable=g-import-not-at-top,wrong-import-order
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-order
from PIL import Image  # pylint: disable=g-import-not-at-top,wrong-import-order

from halluc_jax.targets import extract_video  # pylint: disable=g-import-not-at-top,wrong-import-position
from halluc_jax.descriptors import flow as flow_lib  # pylint: disable=wrong-import-position
from halluc_jax.descriptors.sources import LABEL_SPACE  # pylint: disable=wrong-import-position

BOX_COLOURS = plt.get_cmap('tab10').colors


def flow_to_rgb(flow, max_speed=None):
  """HSV coding of a flow field [H, W, 2]: hue = direction, value = speed / max_speed."""
  speed, angle = cv2.cartToPolar(flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32))
  max_speed = max_speed or max(float(np.percentile(speed, 99)), 1e-3)
  hsv = np.stack([angle * (90 / np.pi), np.full_like(speed, 255),
                  np.clip(speed / max_speed, 0, 1) * 255], axis=-1).astype(np.uint8)
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _flow_wheel(size=25):
  yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
  wheel = flow_to_rgb(np.stack([xx, yy], -1), max_speed=1.0)
  wheel[np.hypot(xx, yy) > 1] = 255
  return wheel


def stream_panels(video_path, specs, num_frames):
  """Per stream, a list of (kind, payload) panels over the sampled frames, and the frames.

  Returns:
    (indices [J], frames uint8 [J, H, W, 3], {name: ('boxes', Detections) | ('map', [J, H, W])
    | ('flow', [J, H, W, 2])}).
  """
  clip = extract_video.read_clip(video_path, specs, num_frames, 0)
  panels = {}
  for name, spec in specs.items():
    built = extract_video.sources_for(name, spec)
    source = spec['source']
    if source in ('shape', 'hog', 'haar', 'mser'):
      panels[name] = ('boxes', built(clip['frames'], clip['indices']))
    elif source == 'motion':
      chunks = extract_video.consecutive_chunks(video_path, int(clip['indices'][-1]), None)
      panels[name] = ('map', built(chunks, clip['indices']))
    elif source == 'flow':
      method = built[0]
      panels[name] = ('flow', np.stack([flow_lib.dense_flow(clip['frame_at'][a],
                                                            clip['frame_at'][b], method)
                                        for a, b in clip['pairs']]))
    else:
      panels[name] = ('map', built(clip['frames']))
  return clip['indices'], clip['frames'], panels


def _draw_boxes(ax, dets, t, height, width):
  for i in np.flatnonzero(dets.frame_index == t):
    y0, x0, y1, x1 = dets.boxes[i] * [height, width, height, width]
    colour = BOX_COLOURS[int(dets.class_ids[i]) % len(BOX_COLOURS)]
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.0,
                               ec=colour))
    ax.text(x0, y0 - 1, f'{LABEL_SPACE[dets.class_ids[i]][:5]} {dets.scores[i]:.2f}',
            color=colour, fontsize=4.5, va='bottom', clip_on=True)


def render(video_path, out_path, specs, num_frames=4, dpi=100):
  """Writes the PNG of `video_path` (see module docstring); returns its path."""
  indices, frames, panels = stream_panels(video_path, specs, num_frames)
  rows, cols = len(indices), len(panels)
  height, width = frames.shape[1:3]
  fig, axes = plt.subplots(rows, cols, figsize=(1.35 * cols, 1.35 * rows + 0.3), squeeze=False,
                           dpi=dpi)
  for c, (name, (kind, payload)) in enumerate(panels.items()):
    axes[0, c].set_title(name, fontsize=7)
    for r, t in enumerate(indices):
      ax = axes[r, c]
      ax.set_xticks([])
      ax.set_yticks([])
      if kind == 'boxes':
        ax.imshow(frames[r])
        _draw_boxes(ax, payload, t, height, width)
      elif kind == 'map':
        ax.imshow(payload[r], cmap='inferno', vmin=0, vmax=1)
      else:
        ax.imshow(flow_to_rgb(payload[r]))
        if r == 0:
          ax.imshow(_flow_wheel(), extent=(width * 0.78, width - 1, height * 0.22, 0))
          ax.set_xlim(-0.5, width - 0.5)
          ax.set_ylim(height - 0.5, -0.5)
      if c == 0:
        ax.set_ylabel(f'frame {t}', fontsize=6)
  fig.suptitle(video_path.split('/')[-1], fontsize=7)
  fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.97))
  fig.canvas.draw()
  rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
  plt.close(fig)
  # A 256-colour palette keeps the committed PNG small (docs/descriptors.png < 300 KB).
  Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT).save(out_path,
                                                                           optimize=True)
  return out_path


def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  path = render(f.video, f.out, extract_video.built_in_specs(f.config), f.num_frames)
  print(f'wrote {path}')


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', 'configs/default.py', 'Config file (ml_collections).')
  flags.DEFINE_string('video', None, 'Video file to show.', required=True)
  flags.DEFINE_string('out', None, 'PNG to write.', required=True)
  flags.DEFINE_integer('num_frames', 4, 'Frames (rows) sampled uniformly over the video.')
  app.run(main)
