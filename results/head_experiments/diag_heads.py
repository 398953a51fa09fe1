"""Per-stream head diagnostics of a trained workdir, in the standardised (z) space.

Usage: python results/head_experiments/diag_heads.py WORKDIR [SPLITS, default train,val]
For each split (every eval view, eval transforms): pooled R² of the heads' outputs against the
split's own mean, the outputs' and targets' std across clips (mean over coordinates), their
mean per-coordinate correlation, and CENet's log-diagonal statistics (training mode).
"""
import sys, json
import numpy as np, jax, jax.numpy as jnp
from halluc_jax.tools import predict
from halluc_jax import setup as setup_lib
from halluc_jax.data import pipeline

def main():
  wd = sys.argv[1]
  splits = sys.argv[2].split(',') if len(sys.argv) > 2 else ['train', 'val']
  config = predict.load_config(wd)
  config.data.num_workers = 0
  step, variables = predict.restore_latest(wd)
  model = setup_lib.build_model(config)
  fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
  fn_tr = jax.jit(lambda v, x, r: model.apply(v, x, train=True, rngs={'dropout': r}, mutable=['batch_stats'])[0])
  out = {}
  for split in splits:
    it = pipeline.make_eval_dataset(config, 0, 1, split=split)
    preds, targs, chol = {}, {}, []
    for batch in it:
      keep = np.asarray(batch['valid']) > 0
      o = fn(variables, jnp.asarray(batch['video']))
      otr = fn_tr(variables, jnp.asarray(batch['video']), jax.random.PRNGKey(0))
      if 'cholesky' in otr:
        (s, c), = otr['cholesky'].items(); chol.append(np.asarray(c['log_diag'])[keep])
      for n, p in o['hallucinated'].items():
        m = keep & (np.asarray(batch['aux_mask'][n]) > 0)
        preds.setdefault(n, []).append(np.asarray(p)[m]); targs.setdefault(n, []).append(np.asarray(batch['aux'][n])[m])
    it.close() if hasattr(it, 'close') else None
    res = {}
    for n in preds:
      p, t = np.concatenate(preds[n]), np.concatenate(targs[n])
      sse = ((p - t) ** 2).sum(); sst = ((t - t.mean(0)) ** 2).sum()
      res[n] = dict(r2_own_mean=round(float(1 - sse / sst), 3), pred_std=round(float(p.std(0).mean()), 4),
                    targ_std=round(float(t.std(0).mean()), 4),
                    corr=round(float(np.mean([np.corrcoef(p[:, k], t[:, k])[0, 1] for k in range(p.shape[1]) if p[:, k].std() > 0])), 3))
    if chol:
      ld = np.concatenate(chol); res['cenet_log_diag'] = dict(mean=round(float(ld.mean()), 3), std_over_clips=round(float(ld.std(0).mean()), 4), min=round(float(ld.min()), 2), max=round(float(ld.max()), 2))
    out[split] = res
  print(json.dumps(out, indent=1))

if __name__ == '__main__':
  main()
