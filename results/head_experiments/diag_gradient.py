"""Where the hallucination pass's gradient goes: constant-target coordinates vs the others.

Usage: python results/head_experiments/diag_gradient.py WORKDIR
Loads WORKDIR's newest checkpoint, runs one train batch (eval transforms) through the model in
training mode and `losses.hallucination_loss`, and prints the gradient's global norm, each
stream's kernel-column gradient norm split by constant / varying coordinate, and CENet's mean
log-diagonal on each (docs/method.md, "Constant target coordinates").
"""
import sys, json
import numpy as np, jax, jax.numpy as jnp
from halluc_jax import losses
from halluc_jax.tools import predict
from halluc_jax import setup as setup_lib
from halluc_jax.data import pipeline, aux_targets

def main():
  wd = sys.argv[1]
  config = predict.load_config(wd)
  config.data.num_workers = 0
  step, variables = predict.restore_latest(wd)
  model = setup_lib.build_model(config)
  varies = aux_targets.standardizer_for_config(config).varies
  const = {n: varies[n] == 0 for n, _ in model.stream_dims}
  it = pipeline.make_eval_dataset(config, 0, 1, split='train')
  batch = next(iter(it))
  b = {k: batch[k] for k in ('label', 'valid', 'aux', 'aux_mask')}
  b = jax.tree.map(jnp.asarray, b)
  def hal(params):
    out, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, jnp.asarray(batch['video']),
                         train=True, rngs={'dropout': jax.random.PRNGKey(0)}, mutable=['batch_stats'])
    l, met = losses.hallucination_loss(out, b, config.loss)
    return l, out
  (l, out), g = jax.value_and_grad(hal, has_aux=True)(variables['params'])
  res = {'hal_loss': float(l)}
  tot = float(jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(g))))
  res['global_grad_norm'] = tot
  for n in sorted(const):
    k = np.asarray(g['streams'][n]['fc']['kernel']); c = const[n]
    res[n] = dict(grad_norm_const_cols=float(np.sqrt((k[:, c] ** 2).sum())), grad_norm_info_cols=float(np.sqrt((k[:, ~c] ** 2).sum())), n_const=int(c.sum()))
  (s, ch), = out['cholesky'].items()
  ld = np.asarray(ch['log_diag'])  # [B, m, d*] grouped
  names = sorted(const)
  for i, n in enumerate(names):
    c = const[n]
    res[n]['log_diag_const'] = float(ld[:, c, i].mean()) if c.any() else None
    res[n]['log_diag_info'] = float(ld[:, ~c, i].mean())
  bb = float(jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(g['backbone'])))) if 'backbone' in g else None
  res['backbone_grad_norm'] = bb
  print(json.dumps(res, indent=1))

if __name__ == '__main__':
  main()
