"""Training and evaluation loops: `train_and_evaluate(config, workdir)`, `evaluate_only(...)`.

A rerun of the same command in the same workdir resumes from the newest checkpoint (train
state and data position together), so a killed run continues where its last checkpoint left
off and ends with the same parameters as an uninterrupted one.
"""
import json
import logging
import os
import time

import jax
import numpy as np
from clu import periodic_actions

from halluc_jax import checkpointing
from halluc_jax import init_from
from halluc_jax.evaluation import evaluate as evaluate_lib
from halluc_jax.evaluation import results_io
from halluc_jax import metrics_log
from halluc_jax.perf import mfu as mfu_lib
from halluc_jax import setup as setup_lib
from halluc_jax.data import pipeline


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN/inf under `train.nan_policy='stop'`."""


def final_splits(config):
  """{'eval': eval split[, 'test': test split]}: what the end of a run evaluates, in order.

  Runs select on the eval (validation) split, evaluated during training too; the test split
  (`config.data.test_split`, '' = none) is evaluated once, at the end, and reported.
  """
  splits = {'eval': config.data.eval_split}
  test = config.data.get('test_split', '')
  if test and test != config.data.eval_split:
    splits['test'] = test
  return splits


def run_eval(config, setup, state, workdir, step, kind='eval'):
  """Evaluates `state` on the split `final_splits(config)[kind]`; writes <workdir>/<kind>/."""
  split = final_splits(config)[kind]
  eval_iter = pipeline.make_eval_dataset(config, jax.process_index(), jax.process_count(),
                                         split=split, streams=setup.streams.dims)
  try:
    result = evaluate_lib.evaluate(
        setup.predict_fn(state), eval_iter, config.data.num_classes,
        multi_label=bool(config.data.multi_label), class_names=pipeline.read_split(config, split).class_names,
        out_dir=os.path.join(workdir, kind) if jax.process_index() == 0 else None, step=step,
        **evaluate_lib.target_space_args(config))
  finally:
    pipeline.close(eval_iter)
  result['split'] = split
  return result


def run_final_evals(config, setup, state, workdir, step, writer=None):
  """The eval split, then the test split if any: {'eval': result[, 'test': result]}."""
  results = {}
  for kind, split in final_splits(config).items():
    if kind == 'test' and split not in pipeline.split_names(config):
      logging.warning("config.data.test_split=%r has no videos in %s: no test evaluation "
                      "(set config.data.test_split='' to say so).", split,
                      config.data.annotations)
      continue
    results[kind] = run_eval(config, setup, state, workdir, step, kind)
    if writer is not None:
      writer.write_scalars(step, _eval_scalars(results[kind], kind))
  return results


def _eval_scalars(result, prefix='eval'):
  out = {f'{prefix}/{k}': result[k] for k in ('top1', 'top5', 'mean_class_accuracy', 'mAP')
         if k in result and result[k] is not None}
  for stream, q in result.get('hallucination', {}).items():
    out[f'{prefix}/hal_cosine/{stream}'] = q['cosine']
    out[f'{prefix}/hal_r2/{stream}'] = q['r2']
    if 'train_mean_r2' in q:  # the constant train-mean predictor, for comparison
      out[f'{prefix}/hal_r2_train_mean/{stream}'] = q['train_mean_r2']
  return out


def _flat_hparams(tree, prefix=''):
  """Nested config dict -> {'data.batch_size': 8, ...}, scalars only (for TensorBoard)."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flat_hparams(v, f'{prefix}{k}.'))
    elif isinstance(v, (bool, int, float, str)):
      out[f'{prefix}{k}'] = v
  return out


def _write_config(config, workdir):
  """config.json and environment.json (library versions; results_io copies it into summaries)."""
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=1, sort_keys=True))
    with open(os.path.join(workdir, results_io.ENVIRONMENT_FILE), 'w') as f:
      json.dump(results_io.environment(), f, indent=1)


# ---------------------------------------------------------------------------------------------
# Train loop.
# ---------------------------------------------------------------------------------------------
def train_and_evaluate(config, workdir):
  """Trains (resuming if the workdir has a checkpoint), evaluates, returns a summary dict.

  Returns:
    {'step': final step, 'train': last logged train scalars, 'eval': final eval result,
     'preempted': whether SIGTERM ended the run early}.

  Raises:
    NonFiniteLossError: a NaN/inf loss under `train.nan_policy='stop'`; the checkpoints on
      disk all predate it.
  """
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  metrics_log.quiet_library_logs()
  _write_config(config, workdir)
  tc = config.train
  setup = setup_lib.Setup(config)
  steps_per_epoch, total_steps = setup.steps_per_epoch, setup.total_steps
  train_iter = pipeline.make_train_dataset(config, jax.process_index(), jax.process_count(),
                                           streams=setup.streams.dims)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), config.checkpoint)
  if ckpt.latest_step() is not None:
    state = ckpt.restore(setup.abstract_state, train_iter)
    logging.info('Resumed from checkpoint step %d in %s', int(state.step), ckpt.directory)
  else:
    state = init_from.apply(config, setup.init_state())
  step = int(jax.device_get(state.step))
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info('Model: %s parameters; mesh %s; %d steps (%d per epoch), update scheme %r.',
               f'{num_params:,}', dict(setup.mesh.shape), total_steps, steps_per_epoch,
               config.loss.update_scheme)

  writer = metrics_log.create_writer(workdir)
  if step == 0:
    writer.write_hparams(_flat_hparams(config.to_dict()))
  report = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                           every_steps=int(tc.log_every), every_secs=None)
  meter = metrics_log.TrainMeter(config.data.batch_size, total_steps, start_step=step)
  train_step, step_flops = None, 0.0  # compiled at the first batch; model FLOPs of one step
  peak_flops = mfu_lib.device_peak_flops()  # None on CPU: no MFU, achieved TFLOP/s only
  last_saved = ckpt.latest_step()
  prev_finite = None  # finiteness of the previous step, checked one step late (no sync)
  scalars, result, preempted = {}, None, False

  def check_finite(flag, at_step, metrics):
    if tc.nan_policy == 'stop' and not bool(jax.device_get(flag)):
      host = {k: float(v) for k, v in jax.device_get(metrics).items() if np.ndim(v) == 0}
      losses = ', '.join(f'{k}={v:.4g}' for k, v in sorted(host.items()) if 'loss' in k)
      raise NonFiniteLossError(
          f'Non-finite loss at step {at_step} ({losses}). Training stopped; the newest '
          f'checkpoint (step {ckpt.latest_step()}) in {ckpt.directory} predates it and is '
          'intact. Try a lower config.optim.lr or config.optim.clip_norm, or set '
          "config.train.nan_policy='skip'.")

  first_step, t_start = step, time.perf_counter()
  try:
    with checkpointing.PreemptionSignal() as preemption, setup.context():
      while step < total_steps:
        with meter.waiting_for_data():
          batch = next(train_iter)
          batch = pipeline.device_put_batch(batch, setup.batch_sharding)
        if train_step is None:  # ahead of time, so the step's model FLOPs are counted once
          train_step, step_flops = setup.compile_train_step(state, batch)
          logging.info('Train step: %.4g model TFLOPs per step (jaxpr matmuls + convs); peak %s.',
                       step_flops / mfu_lib.TFLOPS, 'unknown (no MFU)' if peak_flops is None
                       else f'{peak_flops / mfu_lib.TFLOPS:.0f} TFLOP/s per device')
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          state, metrics = train_step(state, batch)
        if prev_finite is not None:
          check_finite(*prev_finite)
        step += 1
        prev_finite = (metrics['finite'], step, metrics)
        meter.add(metrics)
        report(step)
        if step == first_step + 1:  # compilation: keep it out of the throughput figures
          jax.block_until_ready(metrics)
          logging.info('First step (with compilation) took %.1f s.', time.perf_counter() - t_start)
          meter.restart_window(step)

        if step % int(tc.log_every) == 0 or step == total_steps:
          check_finite(*prev_finite)
          scalars = meter.summary(step)
          scalars.update(mfu_lib.throughput_scalars(
              step_flops, scalars.get('steps_per_sec'), setup.mesh.size, peak_flops))
          writer.write_scalars(step, scalars)
          metrics_log.print_progress(metrics_log.progress_line(
              step, total_steps, scalars, meter.eta_seconds(step, scalars)))

        save_now = (step % int(tc.checkpoint_every) == 0 or step == total_steps
                    or preemption.received)
        if save_now and step != last_saved:
          check_finite(*prev_finite)
          t0 = time.perf_counter()
          ckpt.save(step, state, train_iter)
          last_saved = step
          meter.exclude(time.perf_counter() - t0)
        if preemption.received:
          logging.warning('Stopping at step %d after %s; checkpoint saved. Rerun the same '
                          'command to resume.', step, preemption.received)
          preempted = True
          break

        if tc.eval_every and step % int(tc.eval_every) == 0 and step != total_steps:
          t0 = time.perf_counter()
          with report.timed('eval'):
            result = run_eval(config, setup, state, workdir, step)
          writer.write_scalars(step, _eval_scalars(result))
          meter.exclude(time.perf_counter() - t0)
      if not preempted:
        final = run_final_evals(config, setup, state, workdir, step, writer)
        result = final['eval']
  finally:
    ckpt.close()
    writer.flush()
    pipeline.close(train_iter)

  summary = {'step': step, 'train': scalars, 'eval': result, 'preempted': preempted}
  if not preempted:
    summary.update(final)
  if jax.process_index() == 0 and not preempted:
    with open(os.path.join(workdir, 'summary.json'), 'w') as f:
      json.dump({'step': step, 'train': scalars,
                 **{kind: {k: v for k, v in r.items() if isinstance(v, (int, float, str))}
                    for kind, r in final.items()}}, f, indent=1)
  return summary


def evaluate_only(config, workdir, step=None):
  """Evaluates the newest (or a given) checkpoint in `workdir`: {'eval': ...[, 'test': ...]}."""
  workdir = os.path.abspath(workdir)
  setup = setup_lib.Setup(config)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), config.checkpoint)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f'No checkpoint to evaluate in {ckpt.directory}; train first '
                            '(--mode train_and_evaluate).')
  state = ckpt.restore(setup.abstract_state, step=step)
  ckpt.close()
  with setup.context():
    return run_final_evals(config, setup, state, workdir, int(jax.device_get(state.step)))
