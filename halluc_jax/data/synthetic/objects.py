"""The 'objects' class family of the embedded dataset: *which kind of object* does *what*.

A class is a (kind, motion) pair, e.g. `red_triangle_rise`: one large actor of that kind makes
that motion while, some of the time, an idle bystander of another kind sits beside it, and small
distractors of any shape and colour wander through the same cluttered scene as in the motion
family. A kind is a shape the shape detector labels apart (circle, triangle, quadrilateral) in a
colour family its crop colour scores tell apart (red or blue); the motion is `rise` or `fall`
(its time reversal), which optical flow and motion saliency see but a single frame does not. So
a frame shows which kinds are present; only motion over time tells what they do.

Both motions are vertical, so the family is invariant to a horizontal flip, as the motion family
is. Programmes share the motion family's helpers (`motion.py`), so the scenes are drawn
from the same distribution.
"""
import numpy as np

from halluc_jax.data.synthetic import motion as sc

COLOURS = {'red': (-0.3, 0.3), 'blue': (3.6, 4.2)}  # hue ranges, units of 60 degrees
SHAPES = ('circle', 'triangle', 'square')  # the shape detector's circle/triangle/quadrilateral
KINDS = tuple(f'{colour}_{shape}' for colour in COLOURS for shape in SHAPES)
MOTIONS = ('rise', 'fall')
CLASS_NAMES = tuple(f'{kind}_{motion}' for kind in KINDS for motion in MOTIONS)
# Larger than the motion family's actors (0.075-0.12): the kind must be legible at 64 px input.
ACTOR_RADIUS = (0.11, 0.15)
BYSTANDER_PROB = 0.3
TRAVEL = (0.35, 0.55)  # vertical distance the actor travels, in frame sides


def _kind_track(rng, t, x, y, kind, role):
  colour, shape = kind.split('_')
  track = sc.make_track(rng, t, x, y, role=role, radius_range=ACTOR_RADIUS)
  track.shape = shape
  track.colour = sc.random_colour(rng, COLOURS[colour], sat_range=(0.75, 1.0),
                                  val_range=(0.6, 1.0))
  return track


def _actor(rng, t, kind, motion):
  dx, _ = sc._drift(rng, t, 0.05)  # pylint: disable=protected-access  # shared scene helper
  dy = -rng.uniform(*TRAVEL) * sc.progress(rng, t)
  tracks = sc.fit_to_frame(rng, [_kind_track(rng, t, dx, dy, kind, 'actor')])
  return sc.reverse_time(tracks) if motion == 'fall' else tracks


def _bystander(rng, t, actor, kind):
  """An idle actor-sized object of another kind, placed clear of the actor's path if it can be."""
  dx, dy = sc._drift(rng, t, 0.03)  # pylint: disable=protected-access
  for _ in range(30):
    x0, y0 = rng.uniform(sc.MARGIN, 1 - sc.MARGIN, size=2)
    gap = np.min(np.hypot(actor.x - x0 - dx, actor.y - y0 - dy) - actor.radius)
    if gap > ACTOR_RADIUS[1] + 0.02:
      break
  x, y = (np.clip(v, sc.MARGIN, 1 - sc.MARGIN) for v in (x0 + dx, y0 + dy))
  other = str(rng.choice([k for k in KINDS if k != kind]))
  return _kind_track(rng, t, x, y, other, 'bystander')


def actor_tracks(class_name, rng, t):
  """The actor of `class_name` ('<colour>_<shape>_<motion>') plus, at random, a bystander."""
  if class_name not in CLASS_NAMES:
    raise KeyError(f'unknown synthetic objects class {class_name!r}; known: {CLASS_NAMES}')
  kind, motion = class_name.rsplit('_', 1)
  tracks = _actor(rng, t, kind, motion)
  if rng.random() < BYSTANDER_PROB:
    tracks.append(_bystander(rng, t, tracks[0], kind))
  return tracks
