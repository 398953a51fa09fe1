"""Dense trajectories with HOG / HOF / MBH tube descriptors: an OpenCV approximation of IDT.

The paper's BoW / FV streams encode improved dense trajectories (IDT, Wang & Schmid 2013). IDT's
binary does not run here, so this module re-implements the dense-trajectory pipeline
(Wang et al. 2011/2013) on OpenCV Farneback flow, at one scale:

  sampling   grid points every `grid_step` px whose smallest structure-tensor eigenvalue
             (cv2.cornerMinEigenVal, 3x3) exceeds `quality` x its frame maximum, re-sampled in
             every frame for the grid cells that no live track occupies (IDT's rule);
  tracking   P_{t+1} = P_t + (M * w_t)(round(P_t)), w_t the Farneback flow t -> t+1 and M a 3x3
             median filter; a track leaving the frame is dropped, one reaching L + 1 points is
             finished;
  pruning    IDT's checks: std of x and of y both below `min_var` (static), either above
             `max_var` (erratic), or a single step above `max_dis` and above 70% of the length;
  shape      (dP_0, ..., dP_{L-1}) / sum_t ||dP_t||: 2L dims;
  tube       an N x N patch (`patch_size`) around P_t in each of the L frames, shifted inside
             the frame, split into nxy x nxy x nt cells; per cell the frames' orientation
             histograms are summed: HOG (image gradient, 8 bins), HOF (flow, 8 bins + a zero
             bin), MBHx / MBHy (gradient of u / of v, 8 bins each). Orientation bins are full
             circle, centres at k 2 pi / bins, votes split linearly between the two nearest
             bins, weighted by the magnitude; a HOF pixel with |w| <= `zero_flow` votes 1 into
             the zero bin instead (a magnitude vote would leave that bin empty). Each part is
             then L1-normalised and square-rooted (RootSIFT, as IDT's release does).

With L = 15, nxy = 2, nt = 3: traj 30 + HOG 96 + HOF 108 + MBHx 96 + MBHy 96 = 426 dims, IDT's.

Differences from IDT (documented in docs/method.md, "IDT streams"): one spatial scale instead of
8; no camera-motion compensation (no SURF/homography warping of the flow) and no human detector;
OpenCV's Farneback (descriptors/flow.py settings) instead of IDT's own; pixel-level instead of
sub-pixel descriptor sampling; patch size 16 px by default for small frames (IDT: 32 px).
"""
import cv2
import numpy as np

from halluc_jax.descriptors import flow as flow_lib
from halluc_jax.descriptors.sdf import image_gradients

PARTS = ('traj', 'hog', 'hof', 'mbhx', 'mbhy')
ORIENT_BINS = 8
DEFAULTS = {'track_length': 15, 'grid_step': 5, 'quality': 0.001, 'patch_size': 16, 'nxy': 2,
            'nt': 3, 'min_var': float(np.sqrt(3.0)), 'max_var': 50.0, 'max_dis': 20.0,
            'zero_flow': 0.4}


def part_dims(track_length=15, nxy=2, nt=3):
  """{part: dims} of one trajectory's descriptor, in PARTS order."""
  cells = nxy * nxy * nt
  return {'traj': 2 * track_length, 'hog': cells * ORIENT_BINS, 'hof': cells * (ORIENT_BINS + 1),
          'mbhx': cells * ORIENT_BINS, 'mbhy': cells * ORIENT_BINS}


def orientation_maps(dx, dy, bins=ORIENT_BINS, zero_threshold=None):
  """Per-pixel orientation votes: float32 [H, W, bins (+1 with zero_threshold)].

  Each pixel adds magnitude * (1 - frac) to its lower bin and magnitude * frac to the next (bin
  centres k 2 pi / bins, angles arctan2(dy, dx) in image coordinates). With zero_threshold, a
  pixel whose magnitude is <= it votes 1 into the extra last bin and nothing elsewhere.
  """
  dx, dy = np.asarray(dx, np.float32), np.asarray(dy, np.float32)
  magnitude = np.sqrt(dx * dx + dy * dy)
  position = np.arctan2(dy, dx) * np.float32(bins / (2 * np.pi))
  low = np.floor(position)
  frac = position - low
  low = low.astype(np.int64) % bins
  channels = bins + (zero_threshold is not None)
  still = np.zeros(dx.shape, bool) if zero_threshold is None else magnitude <= zero_threshold
  moving = np.where(still, np.float32(0), magnitude)
  base = np.arange(dx.size).reshape(dx.shape) * channels  # bincount on flat indices: fast
  out = np.bincount((base + low).ravel(), (moving * (1 - frac)).ravel(), dx.size * channels)
  out += np.bincount((base + (low + 1) % bins).ravel(), (moving * frac).ravel(),
                     dx.size * channels)
  if zero_threshold is not None:
    out[bins::channels] = still.ravel()
  out = out.reshape(dx.shape + (channels,)).astype(np.float32)
  return out


def integral(maps):
  """Summed-area table [H + 1, W + 1, C] (float64) of [H, W, C] maps."""
  table = np.zeros((maps.shape[0] + 1, maps.shape[1] + 1, maps.shape[2]))
  table[1:, 1:] = maps.cumsum(0).cumsum(1)
  return table


def patch_corners(points, patch_size, height, width):
  """Top-left (x0, y0) int [M] of the N x N patches around `points` [M, 2] (x, y), shifted to
  lie inside the frame (IDT's RectInfo)."""
  centre = np.round(points).astype(np.int64)
  x0 = np.clip(centre[:, 0] - patch_size // 2, 0, max(width - patch_size, 0))
  y0 = np.clip(centre[:, 1] - patch_size // 2, 0, max(height - patch_size, 0))
  return x0, y0


def cell_sums(table, points, patch_size, nxy):
  """Per-track cell histograms of one frame: [M, nxy * nxy, C], cells row-major (y, then x).

  Args:
    table: `integral` of the frame's orientation maps.
    points: [M, 2] (x, y) patch centres.
    patch_size: N (a multiple of nxy; cells are N / nxy px).
    nxy: spatial cells per side.
  """
  height, width = table.shape[0] - 1, table.shape[1] - 1
  x0, y0 = patch_corners(points, patch_size, height, width)
  step = np.arange(nxy + 1) * (patch_size // nxy)
  xs = np.minimum(x0[:, None] + step, width)  # [M, nxy + 1] cell edges, clipped for tiny frames
  ys = np.minimum(y0[:, None] + step, height)
  top, bottom = ys[:, :-1, None], ys[:, 1:, None]  # [M, nxy, 1]
  left, right = xs[:, None, :-1], xs[:, None, 1:]  # [M, 1, nxy]
  sums = table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]
  return sums.reshape(len(points), nxy * nxy, table.shape[2])


def root_normalize(desc):
  """RootSIFT of [M, D] rows: L1-normalise, then the element-wise square root."""
  desc = np.maximum(desc, 0.0)  # integral-image differences can round to -1e-12
  total = desc.sum(axis=1, keepdims=True)
  return np.sqrt(desc / np.where(total > 0, total, 1.0))


def valid_tracks(points, min_var, max_var, max_dis):
  """bool [M] of IDT's trajectory checks on [M, L + 1, 2] point sequences."""
  std = points.std(axis=1)  # [M, 2]: population std of x and of y
  steps = np.linalg.norm(np.diff(points, axis=1), axis=2)  # [M, L]
  length, largest = steps.sum(axis=1), steps.max(axis=1)
  static = (std[:, 0] < min_var) & (std[:, 1] < min_var)
  erratic = (std[:, 0] > max_var) | (std[:, 1] > max_var)
  jump = (largest > max_dis) & (largest > 0.7 * length)
  return ~static & ~erratic & ~jump & (length > 0)


def trajectory_shape(points):
  """[M, 2L] normalised displacements (dx_0, dy_0, ..., dx_{L-1}, dy_{L-1}) / sum ||dP||."""
  steps = np.diff(points, axis=1)
  length = np.linalg.norm(steps, axis=2).sum(axis=1)
  return (steps / np.where(length > 0, length, 1.0)[:, None, None]).reshape(
      len(points), 2 * steps.shape[1])


def _to_gray(frames):
  frames = np.asarray(frames)
  if frames.dtype != np.uint8:
    raise ValueError(f'dense_trajectories: frames must be uint8, got {frames.dtype}.')
  if frames.ndim == 4:
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
  if frames.ndim != 3:
    raise ValueError(f'dense_trajectories: frames must be [T, H, W(, 3)], got {frames.shape}.')
  return frames


def frame_maps(gray, flow, zero_flow):
  """Integral tables {hog, hof, mbhx, mbhy} of one frame and its outgoing flow."""
  gx, gy = image_gradients(gray)
  ux, uy = image_gradients(flow[..., 0])
  vx, vy = image_gradients(flow[..., 1])
  return {'hog': integral(orientation_maps(gx, gy)),
          'hof': integral(orientation_maps(flow[..., 0], flow[..., 1], zero_threshold=zero_flow)),
          'mbhx': integral(orientation_maps(ux, uy)), 'mbhy': integral(orientation_maps(vx, vy))}


def grid_samples(gray, occupied_points, grid_step, quality):
  """[S, 2] float (x, y) grid-cell centres with enough texture and no live track in the cell."""
  height, width = gray.shape
  eig = cv2.cornerMinEigenVal(np.ascontiguousarray(gray), 3, ksize=3)
  rows, cols = height // grid_step, width // grid_step
  ys = np.arange(rows) * grid_step + grid_step // 2
  xs = np.arange(cols) * grid_step + grid_step // 2
  keep = eig[ys[:, None], xs[None, :]] > quality * max(float(eig.max()), 1e-12)
  if len(occupied_points):
    cell = np.floor(occupied_points / grid_step).astype(np.int64)
    inside = (cell[:, 0] < cols) & (cell[:, 1] < rows)
    keep[cell[inside, 1], cell[inside, 0]] = False
  r, c = np.nonzero(keep)
  return np.stack([xs[c], ys[r]], axis=1).astype(np.float64)


def dense_trajectories(frames, track_length=15, grid_step=5, quality=0.001, patch_size=16, nxy=2,
                       nt=3, min_var=np.sqrt(3.0), max_var=50.0, max_dis=20.0, zero_flow=0.4,
                       flow_method='farneback'):
  """Tracks dense points through a clip and describes each finished trajectory.

  Args:
    frames: uint8 [T, H, W, 3] RGB (or [T, H, W] gray) consecutive frames.
    track_length: L, frames per trajectory (L + 1 points); a multiple of nt.
    grid_step, quality: dense sampling (see module docstring).
    patch_size, nxy, nt: the tube grid (patch_size a multiple of nxy).
    min_var, max_var, max_dis: IDT's pruning thresholds, in pixels.
    zero_flow: HOF zero-bin magnitude, px per frame.
    flow_method: descriptors/flow.py method ('farneback', as IDT; or 'dis').

  Returns:
    (descriptors {part: float32 [N, dims]} in PARTS order, points float32 [N, L + 1, 2] (x, y),
    start frames int [N]); N = 0 when the clip is shorter than L + 1 frames or nothing moved.
  """
  if track_length % nt or patch_size % nxy:
    raise ValueError(f'dense_trajectories: track_length {track_length} must be a multiple of nt '
                     f'{nt} and patch_size {patch_size} of nxy {nxy}.')
  gray = _to_gray(frames)
  num_frames, height, width = gray.shape
  dims = part_dims(track_length, nxy, nt)
  hist_parts = PARTS[1:]
  done = {'points': [], 'start': [], **{p: [] for p in hist_parts}}
  live_points = np.zeros((0, track_length + 1, 2))  # [M, L + 1, 2], filled up to age
  live_start = np.zeros((0,), np.int64)
  live_hist = {p: np.zeros((0, nt, nxy * nxy, dims[p] // (nt * nxy * nxy))) for p in hist_parts}
  cell_frames = track_length // nt
  for t in range(num_frames - 1):
    age = t - live_start
    if t + track_length <= num_frames - 1:  # a track started now can still finish
      current = live_points[np.arange(len(age)), age] if len(age) else np.zeros((0, 2))
      new = grid_samples(gray[t], current, grid_step, quality)
      fresh = np.zeros((len(new), track_length + 1, 2))
      fresh[:, 0] = new
      live_points = np.concatenate([live_points, fresh])
      live_start = np.concatenate([live_start, np.full(len(new), t)])
      for p in hist_parts:
        live_hist[p] = np.concatenate([live_hist[p], np.zeros((len(new),) + live_hist[p].shape[1:])])
      age = t - live_start
    if not len(live_start):
      continue
    rows = np.arange(len(age))
    here = live_points[rows, age]
    flow = flow_lib.dense_flow(gray[t], gray[t + 1], flow_method)
    tables = frame_maps(gray[t], flow, zero_flow)
    for p in hist_parts:
      live_hist[p][rows, age // cell_frames] += cell_sums(tables[p], here, patch_size, nxy)
    # Track with the median-filtered flow at the rounded point.
    smooth = cv2.medianBlur(np.ascontiguousarray(flow), 3)
    at = np.round(here).astype(np.int64)
    at[:, 0] = np.clip(at[:, 0], 0, width - 1)
    at[:, 1] = np.clip(at[:, 1], 0, height - 1)
    nxt = here + smooth[at[:, 1], at[:, 0]]
    live_points[rows, age + 1] = nxt
    inside = (nxt[:, 0] >= 0) & (nxt[:, 0] <= width - 1) & (nxt[:, 1] >= 0) & (
        nxt[:, 1] <= height - 1)
    finished = inside & (age + 1 == track_length)
    if np.any(finished):
      done['points'].append(live_points[finished])
      done['start'].append(live_start[finished])
      for p in hist_parts:
        done[p].append(live_hist[p][finished])
    keep = inside & ~finished
    live_points, live_start = live_points[keep], live_start[keep]
    for p in hist_parts:
      live_hist[p] = live_hist[p][keep]
  return _describe(done, dims, track_length, min_var, max_var, max_dis)


def _describe(done, dims, track_length, min_var, max_var, max_dis):
  """(descriptors, points, starts) of the finished tracks that pass IDT's checks."""
  points = np.concatenate(done['points']) if done['points'] else np.zeros((0, track_length + 1, 2))
  ok = valid_tracks(points, min_var, max_var, max_dis)
  if not np.any(ok):
    return ({p: np.zeros((0, dims[p]), np.float32) for p in PARTS},
            np.zeros((0, track_length + 1, 2), np.float32), np.zeros((0,), np.int64))
  out = {'traj': trajectory_shape(points[ok]).astype(np.float32)}
  for p in PARTS[1:]:
    hist = np.concatenate(done[p])[ok]
    out[p] = root_normalize(hist.reshape(len(hist), -1)).astype(np.float32)
  return out, points[ok].astype(np.float32), np.concatenate(done['start'])[ok]


def stack_parts(descriptors):
  """[N, sum of dims] of a {part: [N, dims]} dict, in PARTS order."""
  return np.concatenate([descriptors[p] for p in PARTS], axis=1)
