"""Augmentations of a whole device batch, inside the jitted train step (`config.augment`).

mixup and cutmix (the VideoMAE / timm fine-tuning recipe) mix each clip with its partner, the
clip one place further along the batch (a roll of the batch axis: under a batch-sharded mesh XLA
moves one clip per device boundary, not the batch). One draw per batch, as timm's default 'batch'
mode: with probability `mix_prob` the batch is mixed, by cutmix with probability
`mix_switch_prob` when both are on, else by mixup.

  mixup   x = lam * x + (1 - lam) * x_partner, lam ~ Beta(mixup_alpha, mixup_alpha)
  cutmix  a box of area (1 - lam) * H * W (lam ~ Beta(cutmix_alpha, cutmix_alpha)), the same on
          every frame, is pasted from the partner; lam is then re-measured from the clipped box

Labels become lam * y + (1 - lam) * y_partner (one-hot or multi-hot); a clip whose partner failed
to decode (valid = 0) is left unmixed. Random erasing (Zhong et al.; VideoMAE's `reprob`, 'pixel'
mode) replaces, with probability `random_erase_prob` per clip, one box of area fraction in
`random_erase_area` and aspect ratio in `random_erase_aspect` (log-uniform) by standard normal
noise, the same box on every frame (the clip is normalised, so noise has the data's scale).

These change what a clip shows but not its extracted descriptors, so the train step applies
them to the classification pass only (docs/method.md, 'Fine-tuning recipe').
"""
import jax
import jax.numpy as jnp


def enabled(augment_cfg):
  """Whether any batch augmentation is on."""
  if not augment_cfg:
    return False
  return (float(augment_cfg.get('mixup_alpha', 0.0)) > 0
          or float(augment_cfg.get('cutmix_alpha', 0.0)) > 0
          or float(augment_cfg.get('random_erase_prob', 0.0)) > 0)


def _soft_labels(labels, num_classes):
  if labels.ndim == 1:
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  return labels.astype(jnp.float32)


def cutmix_box_mask(rng, height, width, lam):
  """bool [H, W], True inside a box of area ~(1 - lam) H W at a uniform centre, clipped to the
  frame, and the area-corrected lam = 1 - box area / (H W)."""
  cut = jnp.sqrt(1.0 - lam)
  ch, cw = (height * cut).astype(jnp.int32), (width * cut).astype(jnp.int32)
  ky, kx = jax.random.split(rng)
  cy = jax.random.randint(ky, (), 0, height)
  cx = jax.random.randint(kx, (), 0, width)
  y0, y1 = jnp.clip(cy - ch // 2, 0, height), jnp.clip(cy + ch // 2, 0, height)
  x0, x1 = jnp.clip(cx - cw // 2, 0, width), jnp.clip(cx + cw // 2, 0, width)
  ys, xs = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
  mask = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
  return mask, 1.0 - jnp.mean(mask.astype(jnp.float32))


def mix(rng, video, labels, valid, num_classes, mixup_alpha=0.0, cutmix_alpha=0.0,
        switch_prob=0.5, prob=1.0):
  """(mixed video [B, T, H, W, C], soft labels [B, C], lam) of one batch."""
  soft = _soft_labels(labels, num_classes)
  if mixup_alpha <= 0 and cutmix_alpha <= 0:
    return video, soft, jnp.float32(1.0)
  k_apply, k_switch, k_mix, k_cut, k_box = jax.random.split(rng, 5)
  partner_video = jnp.roll(video, 1, axis=0)
  partner_soft = jnp.roll(soft, 1, axis=0)
  _, _, h, w, _ = video.shape

  def do_mixup(_):
    lam = jax.random.beta(k_mix, mixup_alpha, mixup_alpha) if mixup_alpha > 0 else 1.0
    lam = jnp.float32(lam)
    return (lam * video + (1.0 - lam) * partner_video).astype(video.dtype), lam

  def do_cutmix(_):
    lam = jnp.float32(jax.random.beta(k_cut, cutmix_alpha, cutmix_alpha))
    box, lam = cutmix_box_mask(k_box, h, w, lam)
    return jnp.where(box[None, None, :, :, None], partner_video, video), lam

  if mixup_alpha > 0 and cutmix_alpha > 0:
    use_cut = jax.random.bernoulli(k_switch, switch_prob)
    mixed, lam = jax.lax.cond(use_cut, do_cutmix, do_mixup, None)
  elif cutmix_alpha > 0:
    mixed, lam = do_cutmix(None)
  else:
    mixed, lam = do_mixup(None)
  lam = jnp.where(jax.random.bernoulli(k_apply, prob), lam, 1.0)
  mixed = jnp.where(lam < 1.0, mixed, video)
  mixed_soft = lam * soft + (1.0 - lam) * partner_soft
  # A clip whose partner is padding or failed to decode stays as it was.
  ok = jnp.roll(valid, 1, axis=0) > 0
  mixed = jnp.where(ok[:, None, None, None, None], mixed, video)
  mixed_soft = jnp.where(ok[:, None], mixed_soft, soft)
  return mixed, mixed_soft, lam


def random_erase(rng, video, prob, area=(0.02, 1.0 / 3.0), aspect=(0.3, 1.0 / 0.3), attempts=10):
  """`video` [B, T, H, W, C] with one box per selected clip replaced by N(0, 1) noise.

  Like timm's RandomErasing, up to `attempts` (area, aspect) draws per clip; the first box that
  fits in the frame is used, and a clip with none is left as it is.
  """
  if prob <= 0:
    return video
  b, t, h, w, c = video.shape
  k_apply, k_area, k_aspect, k_y, k_x, k_noise = jax.random.split(rng, 6)
  area_frac = jax.random.uniform(k_area, (b, attempts), minval=area[0], maxval=area[1])
  log_r = jax.random.uniform(k_aspect, (b, attempts), minval=jnp.log(aspect[0]),
                             maxval=jnp.log(aspect[1]))
  eh = jnp.round(jnp.sqrt(area_frac * h * w * jnp.exp(log_r))).astype(jnp.int32)
  ew = jnp.round(jnp.sqrt(area_frac * h * w / jnp.exp(log_r))).astype(jnp.int32)
  fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
  first = jnp.argmax(fits, axis=1)  # the first draw that fits (0 if none; masked below)
  pick = lambda a: jnp.take_along_axis(a, first[:, None], axis=1)[:, 0]
  eh, ew, any_fit = pick(eh), pick(ew), jnp.any(fits, axis=1)
  y0 = (jax.random.uniform(k_y, (b,)) * (h - eh + 1)).astype(jnp.int32)
  x0 = (jax.random.uniform(k_x, (b,)) * (w - ew + 1)).astype(jnp.int32)
  ys, xs = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  box = ((ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None])
         & (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None]))
  chosen = jax.random.bernoulli(k_apply, prob, (b,)) & any_fit
  box = box & chosen[:, None, None]
  noise = jax.random.normal(k_noise, video.shape, video.dtype)
  return jnp.where(box[:, None, :, :, None], noise, video)


def augment_classification_batch(rng, batch, augment_cfg, num_classes):
  """`batch` with its video (and, when mixing, its labels) augmented per `augment_cfg`."""
  if not enabled(augment_cfg):
    return batch
  k_mix, k_erase = jax.random.split(rng)
  a = augment_cfg
  valid = batch.get('valid', jnp.ones(batch['video'].shape[:1], jnp.float32))
  video, labels = batch['video'], batch['label']
  if float(a.get('mixup_alpha', 0.0)) > 0 or float(a.get('cutmix_alpha', 0.0)) > 0:
    video, labels, _ = mix(k_mix, video, labels, valid, num_classes,
                           float(a.get('mixup_alpha', 0.0)), float(a.get('cutmix_alpha', 0.0)),
                           float(a.get('mix_switch_prob', 0.5)), float(a.get('mix_prob', 1.0)))
  video = random_erase(k_erase, video, float(a.get('random_erase_prob', 0.0)),
                       tuple(a.get('random_erase_area', (0.02, 1.0 / 3.0))),
                       tuple(a.get('random_erase_aspect', (0.3, 1.0 / 0.3))))
  return dict(batch, video=video, label=labels)
