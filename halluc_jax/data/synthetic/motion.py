"""Motion programmes of the 'synthetic actions' classes: which objects move how, frame by frame.

A class is a function `(rng, t) -> list[Track]`, `t` being the normalised time of every frame in
[0, 1]; positions and radii are fractions of the frame side. Every class is invariant to a
horizontal flip (the default training flips clips): motions are vertical, radial, or along a
uniformly random direction, and rotation senses are random, so a mirrored clip is still a valid
clip of its class. Every class draws shapes and colours from the same pools, and rise/fall,
grow/shrink and approach/separate are time reversals of each other, so no single frame tells the
class; only motion and interaction over time do.
"""
import dataclasses

import numpy as np

SHAPES = ('circle', 'square', 'triangle', 'diamond', 'hexagon', 'star')
ACTOR_RADIUS = (0.075, 0.12)  # actors are larger than distractors, but ranges nearly meet
MARGIN = 0.1  # centres are kept in [MARGIN, 1 - MARGIN] (objects may still touch the border)


@dataclasses.dataclass
class Track:
  """One object over time. Arrays have one entry per frame."""
  role: str  # 'actor' (defines the class), 'bystander' (idle actor-sized object), 'distractor'
  shape: str
  colour: tuple  # RGB, 0..255
  outline: bool
  x: np.ndarray
  y: np.ndarray
  radius: np.ndarray
  angle: np.ndarray  # radians
  visible: np.ndarray  # bool


def random_colour(rng, hue_range=(0.0, 6.0), sat_range=(0.5, 1.0), val_range=(0.45, 1.0)):
  """A saturated RGB colour, uniform in hue over `hue_range` (units of 60 degrees, may wrap)."""
  hue = rng.uniform(*hue_range) % 6
  sat, val = rng.uniform(*sat_range), rng.uniform(*val_range)
  c = val * sat
  x = c * (1 - abs(hue % 2 - 1))
  rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(hue) % 6]
  return tuple(int(round(255 * (v + val - c))) for v in rgb)


def make_track(rng, t, x, y, radius=None, role='actor', radius_range=ACTOR_RADIUS):
  """A track with a random look: shape, colour, outline, and a slow spin of random sense."""
  n = len(t)
  if radius is None:
    radius = rng.uniform(*radius_range)
  spin = rng.choice([-1, 1]) * rng.uniform(0, 1.5)  # radians over the clip; sense random
  return Track(
      role=role, shape=str(rng.choice(SHAPES)), colour=random_colour(rng),
      outline=bool(rng.random() < 0.5),
      x=np.broadcast_to(np.asarray(x, float), (n,)).copy(),
      y=np.broadcast_to(np.asarray(y, float), (n,)).copy(),
      radius=np.broadcast_to(np.asarray(radius, float), (n,)).copy(),
      angle=rng.uniform(0, 2 * np.pi) + spin * t,
      visible=np.ones(n, bool))


def progress(rng, t, ease=True):
  """0 -> 1 ramp over a random active window (start in [0, .25], end in [.75, 1])."""
  start, end = rng.uniform(0, 0.25), rng.uniform(0.75, 1.0)
  s = np.clip((t - start) / (end - start), 0, 1)
  return s * s * (3 - 2 * s) if ease and rng.random() < 0.5 else s


def random_direction(rng):
  a = rng.uniform(0, 2 * np.pi)
  return np.array([np.cos(a), np.sin(a)])


def fit_to_frame(rng, tracks):
  """Shifts all tracks' paths to a random place inside the frame, shrinking them if too large.

  Shrinking scales positions and radii together, so contacts stay contacts.
  """
  lo, hi = MARGIN, 1 - MARGIN
  xs = np.concatenate([tr.x for tr in tracks])
  ys = np.concatenate([tr.y for tr in tracks])
  extent = max(xs.max() - xs.min(), ys.max() - ys.min(), 1e-9)
  scale = min(1.0, (hi - lo) / extent)
  for coords, attr in ((xs, 'x'), (ys, 'y')):
    cmin = coords.min()
    new_min = rng.uniform(lo, max(lo, hi - (coords.max() - cmin) * scale))  # max: rounding
    for tr in tracks:
      setattr(tr, attr, new_min + (getattr(tr, attr) - cmin) * scale)
  for tr in tracks:
    tr.radius = tr.radius * scale
  return tracks


def reverse_time(tracks):
  for tr in tracks:
    for attr in ('x', 'y', 'radius', 'angle', 'visible'):
      setattr(tr, attr, getattr(tr, attr)[::-1].copy())
  return tracks


def _drift(rng, t, amount=0.06):
  d = random_direction(rng) * rng.uniform(0, amount)
  return d[0] * t, d[1] * t


# ---- Single-actor classes. ----

def rise(rng, t):
  dx, _ = _drift(rng, t)
  y = -rng.uniform(0.3, 0.6) * progress(rng, t)
  return fit_to_frame(rng, [make_track(rng, t, dx, y)])


def fall(rng, t):
  return reverse_time(rise(rng, t))


def bounce(rng, t):
  """A ball bouncing on an invisible floor: repeated fall/rebound with decaying height."""
  height = rng.uniform(0.25, 0.45)
  bounces = rng.uniform(1.5, 3.0)
  phase = rng.uniform(0, 1)
  decay = 1 - rng.uniform(0, 0.4) * t
  y = -height * decay * np.abs(np.sin(np.pi * (bounces * t + phase)))
  x = rng.choice([-1, 1]) * rng.uniform(0, 0.35) * t
  return fit_to_frame(rng, [make_track(rng, t, x, y)])


def grow(rng, t):
  r0 = rng.uniform(0.045, 0.07)
  r = r0 * (1 + (rng.uniform(2.0, 2.8) - 1) * progress(rng, t))
  dx, dy = _drift(rng, t)
  return fit_to_frame(rng, [make_track(rng, t, dx, dy, radius=np.minimum(r, 0.2))])


def shrink(rng, t):
  return reverse_time(grow(rng, t))


def blink(rng, t):
  """An object that repeatedly vanishes and reappears (2.5 to 5 on/off cycles)."""
  dx, dy = _drift(rng, t)
  track = make_track(rng, t, dx, dy)
  period, duty = rng.uniform(0.2, 0.4), rng.uniform(0.35, 0.65)
  track.visible = ((t / period + rng.uniform(0, 1)) % 1.0) < duty
  return fit_to_frame(rng, [track])


# ---- Two-actor classes (interactions). ----

def _pair(rng, t, gap):
  """Two actors on either side of the origin along a random axis, `gap(t)` apart (edge to edge).

  The share of the motion taken by the first actor is random (0 = it stays put).
  """
  a = make_track(rng, t, 0.0, 0.0)
  b = make_track(rng, t, 0.0, 0.0)
  u = random_direction(rng)
  share = rng.choice([0.0, rng.uniform(0.2, 0.8), 1.0])
  dist = a.radius + b.radius + gap
  a.x, a.y = -share * dist * u[0], -share * dist * u[1]
  b.x, b.y = (1 - share) * dist * u[0], (1 - share) * dist * u[1]
  return [a, b]


def approach(rng, t):
  """Two objects move towards each other and stop before touching."""
  far, near = rng.uniform(0.3, 0.5), rng.uniform(0.06, 0.14)
  p = progress(rng, t)
  return fit_to_frame(rng, _pair(rng, t, far + (near - far) * p))


def separate(rng, t):
  return reverse_time(approach(rng, t))


def collide(rng, t):
  """Two objects meet, touch, and rebound apart (edge gap falls to 0, then rises)."""
  t_hit = rng.uniform(0.35, 0.6)
  v_in, v_out = rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.8)
  gap = np.where(t < t_hit, v_in * (t_hit - t), v_out * (t - t_hit))
  return fit_to_frame(rng, _pair(rng, t, gap))


def push(rng, t):
  """A mover reaches a resting object, then both travel on together in contact."""
  u = random_direction(rng)
  mover, pushed = make_track(rng, t, 0.0, 0.0), make_track(rng, t, 0.0, 0.0)
  t_hit = rng.uniform(0.3, 0.5)
  v_in = rng.uniform(0.45, 0.8)
  v_out = v_in * rng.uniform(0.5, 0.9)
  contact = mover.radius[0] + pushed.radius[0]
  start = -(contact + v_in * t_hit)  # mover's signed position along u; pushed starts at 0
  s_mover = np.where(t < t_hit, start + v_in * t, -contact + v_out * (t - t_hit))
  s_pushed = np.where(t < t_hit, 0.0, v_out * (t - t_hit))
  mover.x, mover.y = s_mover * u[0], s_mover * u[1]
  pushed.x, pushed.y = s_pushed * u[0], s_pushed * u[1]
  return fit_to_frame(rng, [mover, pushed])


def orbit(rng, t):
  """One object circles another (sense random) while the centre one idles."""
  centre, sat = make_track(rng, t, 0.0, 0.0), make_track(rng, t, 0.0, 0.0)
  dx, dy = _drift(rng, t, 0.04)
  centre.x, centre.y = dx, dy
  radius = centre.radius[0] + sat.radius[0] + rng.uniform(0.05, 0.12)
  turns = rng.choice([-1, 1]) * rng.uniform(0.75, 1.5)
  phi = rng.uniform(0, 2 * np.pi) + 2 * np.pi * turns * progress(rng, t, ease=False)
  sat.x, sat.y = dx + radius * np.cos(phi), dy + radius * np.sin(phi)
  return fit_to_frame(rng, [centre, sat])


def follow(rng, t):
  """A leader travels a wavy path and a follower retraces it a fixed distance behind."""
  u = random_direction(rng)
  n = np.array([-u[1], u[0]])
  leader, follower = make_track(rng, t, 0.0, 0.0), make_track(rng, t, 0.0, 0.0)
  speed = rng.uniform(0.35, 0.6)  # frame sides per clip
  spacing = leader.radius[0] + follower.radius[0] + rng.uniform(0.06, 0.15)
  lag = spacing / speed
  amp, freq, phase = rng.uniform(0.02, 0.07), rng.uniform(0.5, 1.2), rng.uniform(0, 2 * np.pi)

  def path(time):
    wave = amp * np.sin(2 * np.pi * freq * time + phase)
    return speed * time * u[0] + wave * n[0], speed * time * u[1] + wave * n[1]

  leader.x, leader.y = path(t + lag)
  follower.x, follower.y = path(t)
  return fit_to_frame(rng, [leader, follower])


CLASSES = {
    'rise': (rise, 'one object moves upwards (some horizontal drift)'),
    'fall': (fall, 'one object moves downwards (the time reversal of rise)'),
    'bounce': (bounce, 'one object bounces on an invisible floor, 1.5-3 bounces, decaying'),
    'grow': (grow, 'one object swells to 2-2.8x its size'),
    'shrink': (shrink, 'one object shrinks to 1/2.8-1/2 of its size (reversal of grow)'),
    'blink': (blink, 'one object vanishes and reappears, 2.5-5 on/off cycles'),
    'approach': (approach, 'two objects move towards each other and stop before touching'),
    'separate': (separate, 'two objects close together move apart (reversal of approach)'),
    'collide': (collide, 'two objects meet, touch and rebound apart'),
    'push': (push, 'one object reaches a resting one, then both move on in contact'),
    'orbit': (orbit, 'one object circles another, 0.75-1.5 turns, either sense'),
    'follow': (follow, 'one object retraces the wavy path of another, a fixed distance behind'),
}
CLASS_NAMES = tuple(CLASSES)
SINGLE_ACTOR = ('rise', 'fall', 'bounce', 'grow', 'shrink', 'blink')
BYSTANDER_PROB = {True: 0.5, False: 0.2}  # single-actor: often; pairs: sometimes


def actor_tracks(class_name, rng, t):
  """The class's actors plus, at random, an idle bystander so object counts don't give it away."""
  if class_name not in CLASSES:
    raise KeyError(f'unknown synthetic class {class_name!r}; known: {CLASS_NAMES}')
  tracks = CLASSES[class_name][0](rng, t)
  if rng.random() < BYSTANDER_PROB[class_name in SINGLE_ACTOR]:
    dx, dy = _drift(rng, t, 0.05)
    for _ in range(20):  # place it where it does not overlap the actors' paths (best effort)
      x0, y0 = rng.uniform(MARGIN, 1 - MARGIN, size=2)
      clear = all(np.min(np.hypot(tr.x - x0 - dx, tr.y - y0 - dy) - tr.radius) > 0.13
                  for tr in tracks)
      if clear:
        break
    x, y = (np.clip(v, MARGIN, 1 - MARGIN) for v in (x0 + dx, y0 + dy))
    tracks.append(make_track(rng, t, x, y, role='bystander'))
  return tracks
