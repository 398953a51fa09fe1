"""The input pipeline's worker processes leave no shared memory behind when it stops.

Before batches went through a pipe, a process that read a few training batches (or a whole
eval pass) with 2 workers and closed its iterators ended with "resource_tracker: There appear
to be N leaked shared_memory objects to clean up at shutdown" (N = 10 to 46 here).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from test_pipeline import _config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent('''
    import importlib.util, json, sys
    from halluc_jax.data import pipeline

    def main():
      spec = importlib.util.spec_from_file_location('cfg', sys.argv[1])
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      config = module.get_config()
      config.data.update(json.loads(sys.argv[2]))
      train = pipeline.make_train_dataset(config, 0, 1)
      batches = [next(train) for _ in range(3)]
      train.close()
      evaluation = pipeline.make_eval_dataset(config, 0, 1)
      views = sum(len(b['label']) for b in evaluation)
      evaluation.close()
      print('read', len(batches), 'train batches and', views, 'eval views')

    if __name__ == '__main__':
      main()
''')


@pytest.mark.parametrize('num_workers', [1, 2])
def test_stopped_workers_leave_no_shared_memory(tiny_dataset, tmp_path, num_workers):
  script = tmp_path / 'read_and_close.py'
  script.write_text(_SCRIPT)
  data = _config(tiny_dataset, num_workers=num_workers, prefetch_buffer=2).data.to_dict()
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
             JAX_PLATFORMS='cpu')
  result = subprocess.run(
      [sys.executable, str(script), os.path.join(ROOT, 'configs', 'default.py'),
       json.dumps(data)], capture_output=True, text=True, timeout=300, env=env, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  # 3 train batches; 12 val videos x 2 clips = 24 eval views (the fixture's split).
  assert 'read 3 train batches and 24 eval views' in result.stdout, result.stdout
  assert 'leaked shared_memory' not in result.stderr, result.stderr[-3000:]
