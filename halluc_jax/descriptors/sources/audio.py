"""An audio stream computed here: log-mel frames of a video's soundtrack (decoded with PyAV).

The paper's AF stream is SoundNet-8 features, which do not run here; this built-in source gives
the audio stream of videos that have a soundtrack from the signal itself (docs/method.md §6):
the first audio stream, decoded and resampled to mono `sample_rate` by PyAV, cut into frames of
`n_fft` samples every `hop` (Hann window), power spectrum, `n_mels` triangular mel filters (HTK
mel scale, 0 Hz to Nyquist), log(mel + 1e-6). The J x n_mels frames then become the stream's
multi-moment descriptor like every built-in stream's. A video without a soundtrack (or one
shorter than a frame) gives None: no target, masked in training.
"""
import av
import numpy as np


def mel_filterbank(sample_rate, n_fft, n_mels):
  """[n_mels, n_fft // 2 + 1] triangular filters on the HTK mel scale, peaks at 1."""
  def mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)

  def hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

  bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
  edges = hz(np.linspace(mel(0.0), mel(sample_rate / 2.0), n_mels + 2))
  lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  rising = (bins[None] - lower) / np.maximum(centre - lower, 1e-9)
  falling = (upper - bins[None]) / np.maximum(upper - centre, 1e-9)
  return np.clip(np.minimum(rising, falling), 0.0, None)


def log_mel(signal, sample_rate, n_fft=400, hop=160, n_mels=40):
  """float64 [J, n_mels] log-mel frames of a mono signal (J = 0 when it is shorter than n_fft)."""
  signal = np.asarray(signal, np.float64).reshape(-1)
  if len(signal) < n_fft:
    return np.zeros((0, n_mels))
  count = 1 + (len(signal) - n_fft) // hop
  frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop][:count]
  power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
  return np.log(power @ mel_filterbank(sample_rate, n_fft, n_mels).T + 1e-6)


class LogMelAudio:
  """path -> log-mel frames [J, n_mels] of its soundtrack, or None without one."""

  def __init__(self, sample_rate=16000, n_fft=400, hop=160, n_mels=40, max_seconds=0.0):
    self.sample_rate, self.n_fft, self.hop, self.n_mels = (int(sample_rate), int(n_fft),
                                                           int(hop), int(n_mels))
    self.max_seconds = float(max_seconds)  # 0 = the whole soundtrack

  def params(self):
    return {'sample_rate': self.sample_rate, 'n_fft': self.n_fft, 'hop': self.hop,
            'n_mels': self.n_mels, 'max_seconds': self.max_seconds}

  def signal(self, path):
    """Mono float64 samples at sample_rate, or None when the file has no audio stream."""
    with av.open(path) as container:
      if not container.streams.audio:
        return None
      resampler = av.AudioResampler(format='flt', layout='mono', rate=self.sample_rate)
      limit = int(self.max_seconds * self.sample_rate) or None
      chunks, total = [], 0
      for frame in container.decode(audio=0):
        for out in resampler.resample(frame):
          chunk = out.to_ndarray().reshape(-1)
          chunks.append(chunk)
          total += len(chunk)
        if limit and total >= limit:
          break
      for out in resampler.resample(None):  # flush
        chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
      return None
    samples = np.concatenate(chunks).astype(np.float64)
    return samples[:limit] if limit else samples

  def __call__(self, path):
    samples = self.signal(path)
    if samples is None:
      return None
    frames = log_mel(samples, self.sample_rate, self.n_fft, self.hop, self.n_mels)
    return frames if len(frames) else None
