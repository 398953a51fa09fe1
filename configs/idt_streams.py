"""The IDT BoW / FV streams (bow_idt, fv1_idt, fv2_idt) on the embedded dataset.

configs/default.py with `config.extract.streams` set to the three dense-trajectory streams
(descriptors/trajectories.py, encoded by descriptors/encodings.py with the codebook that
targets/idt_fit.py fits on the train split only; docs/method.md, 'IDT streams'), written to their
own target folder so the default targets stay as they are.

Run (extraction, then the linear probes of the targets):
  python -m halluc_jax.targets.extract --config configs/idt_streams.py
  python -m halluc_jax.targets.probe_targets --config configs/idt_streams.py

Result (2026-12-03, objects preset, 2-core CPU under load; results/probes/objects_idt_streams.json,
measured with the same settings through configs/default.py into a scratch folder): all 480 videos
have the three targets; codebook fitted on 28,300 descriptors of the 288 train videos in 331 s;
0.53 s per video (decode 0.10, trajectories 0.37, three encodings 0.06; ~209 trajectories per
video). Ridge probes of the sketched targets (d = 128), train -> val / test, chance 8.3%: bow_idt
19.8% / 33.3%, fv1_idt 17.7% / 11.5%, fv2_idt 20.8% / 15.6%, all three 18.8% / 17.7%
(off_hofmbh, the default flow stream: 12.6% / 12.9%). With d = 512 for the three streams
(`--config.extract.stream.{bow,fv1,fv2}_idt.d=512`; the codebook is reused): bow 24.0 / 28.1%,
fv1 29.2 / 25.0%, fv2 25.0 / 21.9%, all three 30.2 / 36.5%.
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')


def get_config(arg=None):
  """configs/default.py (or its `tiny` preset) with the IDT streams only."""
  c = runpy.run_path(_DEFAULT)['get_config'](arg)
  c.extract.streams = 'bow_idt,fv1_idt,fv2_idt'
  c.data.aux_dir = 'data/synthetic_objects/targets_idt'
  return c
