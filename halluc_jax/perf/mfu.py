"""Model FLOPs utilisation (MFU): achieved model FLOP/s over the peak of the devices in use.

    MFU = model_flops_per_step / step_seconds / (num_devices * peak_flops_per_device)

`model_flops_per_step` is the whole step's work over all devices: the matrix products and
convolutions of the step's jaxpr (`train_step.step_flops`, `halluc_jax.perf.flops`), the same on every
backend (XLA's GPU cost analysis misses the cuBLAS/cuDNN calls).
Peaks are dense (no 2:4 sparsity) bf16 tensor throughput per device (per chip for TPUs), from
the vendors' data sheets:

  H100 SXM   989 TFLOP/s  NVIDIA H100 Tensor Core GPU datasheet ("BF16 Tensor Core 1,979
                          teraFLOPS*", * = with sparsity -> 989 dense); PCIe 756, NVL 835.
  H200 SXM   989 TFLOP/s  NVIDIA H200 datasheet (same Hopper die and clocks as H100 SXM); NVL 835.
  A100       312 TFLOP/s  NVIDIA A100 datasheet (BF16 312, 624 with sparsity); SXM and PCIe.
  TPU v4     275 TFLOP/s  cloud.google.com/tpu/docs/v4 (bf16 per chip).
  TPU v5e    197 TFLOP/s  cloud.google.com/tpu/docs/v5e (bf16 per chip).
  TPU v5p    459 TFLOP/s  cloud.google.com/tpu/docs/v5p (bf16 per chip).
  TPU v6e    918 TFLOP/s  cloud.google.com/tpu/docs/v6e (bf16 per chip).

CPUs and unknown accelerators have no entry: `device_peak_flops` returns None and callers
print 'n/a' rather than a made-up MFU.
"""
import math

TFLOPS = 1e12

# jax `device_kind` strings seen in practice: 'NVIDIA H100 80GB HBM3' (SXM), 'NVIDIA H100 PCIe',
# 'NVIDIA H200', 'NVIDIA A100-SXM4-80GB', 'TPU v4', 'TPU v5 lite' (v5e), 'TPU v5' / 'TPU v5p',
# 'TPU v6 lite' (v6e).
# GPU names carry memory sizes and form factors, so they are matched by substring, the most
# specific (longest) key first: 'h100 pcie' before 'h100'.
_GPU_PEAKS = {
    'h100 pcie': 756 * TFLOPS,
    'h100 nvl': 835 * TFLOPS,
    'h100': 989 * TFLOPS,
    'h200 nvl': 835 * TFLOPS,
    'h200': 989 * TFLOPS,
    'a100': 312 * TFLOPS,
}
# TPU names are matched exactly: 'tpu v5' (v5p) is a prefix of 'tpu v5 lite' (v5e).
_TPU_PEAKS = {
    'tpu v4': 275 * TFLOPS,
    'tpu v5 lite': 197 * TFLOPS,
    'tpu v5e': 197 * TFLOPS,
    'tpu v5': 459 * TFLOPS,
    'tpu v5p': 459 * TFLOPS,
    'tpu v6 lite': 918 * TFLOPS,
    'tpu v6e': 918 * TFLOPS,
}


def peak_flops_for_kind(device_kind):
  """Dense bf16 peak FLOP/s of one device of this `device_kind`, or None when unknown."""
  kind = ' '.join(str(device_kind).lower().split())
  if kind in _TPU_PEAKS:
    return _TPU_PEAKS[kind]
  for key in sorted(_GPU_PEAKS, key=len, reverse=True):
    if key in kind:
      return _GPU_PEAKS[key]
  return None


def device_peak_flops(device=None):
  """Peak of `device` (default `jax.devices()[0]`); None on CPU or an unknown accelerator."""
  if device is None:
    import jax  # pylint: disable=g-import-not-at-top  # keeps the table importable without jax
    device = jax.devices()[0]
  return peak_flops_for_kind(device.device_kind)


def mfu(model_flops_per_step, step_seconds, num_devices, peak):
  """Fraction of the devices' peak that the model's FLOPs used (0.42 = 42 %).

  Args:
    model_flops_per_step: FLOPs of one whole training step, summed over all devices.
    step_seconds: wall time of one step.
    num_devices: devices that ran the step.
    peak: peak FLOP/s of one device (see `device_peak_flops`); None = unknown.

  Returns:
    The MFU as a fraction, or None when `peak` is None.
  """
  if peak is None:
    return None
  if step_seconds <= 0 or num_devices <= 0 or peak <= 0:
    raise ValueError(f'mfu needs positive step_seconds, num_devices and peak; got '
                     f'{step_seconds}, {num_devices}, {peak}.')
  if not math.isfinite(model_flops_per_step) or model_flops_per_step < 0:
    raise ValueError(f'model_flops_per_step must be finite and >= 0, got {model_flops_per_step}.')
  return model_flops_per_step / step_seconds / (num_devices * peak)


def format_mfu(value):
  """'41.9%' or 'n/a' (no known peak)."""
  return 'n/a' if value is None else f'{100 * value:.1f}%'


def throughput_scalars(model_flops_per_step, steps_per_sec, num_devices, peak):
  """The trainer's FLOP metrics for one logging window.

  Args:
    model_flops_per_step: FLOPs of one step over all devices (`train_step.step_flops`).
    steps_per_sec: measured step rate of the window; None or 0 = not measured (the window
      held only the compiling first step).
    num_devices: devices that ran the step.
    peak: peak FLOP/s of one device, None when unknown (CPU).

  Returns:
    {} when the FLOPs are unknown (NaN), else {'model_tflops_per_step'} plus, with a step
    rate, 'tflops_per_sec_per_device' (achieved) and, with a known peak, 'mfu' (a fraction).
  """
  if not math.isfinite(model_flops_per_step) or model_flops_per_step <= 0:
    return {}  # FLOPs unknown: log nothing rather than a made-up figure
  out = {'model_tflops_per_step': model_flops_per_step / TFLOPS}
  if steps_per_sec:
    out['tflops_per_sec_per_device'] = (model_flops_per_step * steps_per_sec / num_devices
                                        / TFLOPS)
    value = mfu(model_flops_per_step, 1.0 / steps_per_sec, num_devices, peak)
    if value is not None:
      out['mfu'] = value
  return out
