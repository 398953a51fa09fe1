"""`python -m halluc_jax.data.synthetic --out DIR [--preset objects|motion]`: the embedded dataset."""
from absl import app

from halluc_jax.data import synthetic

if __name__ == '__main__':
  synthetic.define_flags()
  app.run(synthetic.main)
