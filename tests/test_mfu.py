"""MFU maths and the peak-FLOP/s table (halluc_jax/perf/mfu.py)."""
import jax
import pytest

from halluc_jax.perf import mfu


def test_mfu_is_model_flops_over_step_time_over_total_peak():
  # 4e14 FLOPs in 0.5 s on 2 devices of 1e15 FLOP/s each: 8e14 / 2e15 = 40 %.
  assert mfu.mfu(4e14, 0.5, 2, 1e15) == pytest.approx(0.4)
  assert mfu.format_mfu(mfu.mfu(4e14, 0.5, 2, 1e15)) == '40.0%'
  # Twice the devices for the same step: half the utilisation.
  assert mfu.mfu(4e14, 0.5, 4, 1e15) == pytest.approx(0.2)


def test_unknown_peak_gives_none_and_na():
  assert mfu.mfu(1e12, 1.0, 1, None) is None
  assert mfu.format_mfu(None) == 'n/a'


def test_throughput_scalars_for_the_trainer_log():
  # 4e14 FLOPs per step at 2 steps/s on 2 devices: 4e14 FLOP/s = 400 TFLOP/s per device.
  out = mfu.throughput_scalars(4e14, 2.0, 2, 1e15)
  assert out == pytest.approx({'model_tflops_per_step': 400.0,
                               'tflops_per_sec_per_device': 400.0, 'mfu': 0.4})
  assert set(mfu.throughput_scalars(4e14, 2.0, 2, None)) == {  # CPU: no peak, no MFU
      'model_tflops_per_step', 'tflops_per_sec_per_device'}
  assert mfu.throughput_scalars(4e14, None, 2, 1e15) == {'model_tflops_per_step': 400.0}
  assert mfu.throughput_scalars(float('nan'), 2.0, 2, 1e15) == {}  # no cost analysis


@pytest.mark.parametrize('bad', [dict(step_seconds=0.0), dict(num_devices=0),
                                 dict(peak=-1.0), dict(flops=float('nan'))])
def test_mfu_rejects_nonsense(bad):
  args = dict(flops=1e12, step_seconds=1.0, num_devices=1, peak=1e15)
  args.update(bad)
  with pytest.raises(ValueError):
    mfu.mfu(args['flops'], args['step_seconds'], args['num_devices'], args['peak'])


@pytest.mark.parametrize('kind, tflops', [
    ('NVIDIA H100 80GB HBM3', 989), ('NVIDIA H100 PCIe', 756), ('NVIDIA H100 NVL', 835),
    ('NVIDIA H200', 989), ('NVIDIA H200 NVL', 835), ('NVIDIA A100-SXM4-80GB', 312),
    ('NVIDIA A100 80GB PCIe', 312), ('TPU v4', 275), ('TPU v5 lite', 197), ('TPU v5e', 197),
    ('TPU v5', 459), ('TPU v5p', 459), ('TPU v6 lite', 918)])
def test_peaks_of_known_device_kinds(kind, tflops):
  assert mfu.peak_flops_for_kind(kind) == tflops * 1e12


@pytest.mark.parametrize('kind', ['cpu', 'TPU v4 lite', 'NVIDIA GeForce RTX 4090', 'TPU v3', ''])
def test_unknown_device_kinds_have_no_peak(kind):
  assert mfu.peak_flops_for_kind(kind) is None


def test_cpu_device_has_no_peak():
  assert jax.devices()[0].platform == 'cpu'
  assert mfu.device_peak_flops() is None
  assert mfu.device_peak_flops(jax.devices()[0]) is None
