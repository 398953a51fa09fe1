"""The package layout is the architecture: imports point one way between the layers."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'halluc_jax'
# Layers, lowest first: a module may import its own layer and the layers below, never above.
LAYERS = (
    ('shared', ('halluc_jax.perf', 'halluc_jax.descriptors', 'halluc_jax.data.synthetic')),
    ('data + model', ('halluc_jax.data', 'halluc_jax.models', 'halluc_jax.covariance')),
    ('evaluation', ('halluc_jax.evaluation',)),
    ('training core', ('halluc_jax',)),  # the top-level modules
    ('offline targets', ('halluc_jax.targets',)),
    ('tools', ('halluc_jax.tools', 'halluc_jax.bench')),
)
TOOL_PACKAGES = ('halluc_jax.tools', 'halluc_jax.bench', 'halluc_jax.targets')
# Library modules of the tool packages (imported by the CLIs beside them), not tools.
TOOL_LIBRARIES = ('halluc_jax.targets.extraction', 'halluc_jax.targets.extract_video',
                  'halluc_jax.targets.idt_fit',
                  'halluc_jax.targets.idt_video', 'halluc_jax.bench.torch_peers')


def _module_name(path):
  rel = path.relative_to(PACKAGE.parent).with_suffix('')
  parts = rel.parts[:-1] if rel.name == '__init__' else rel.parts
  return '.'.join(parts)


def _layer(module):
  best = None
  for rank, (_, prefixes) in enumerate(LAYERS):
    for prefix in prefixes:
      top_level = prefix == 'halluc_jax' and module.count('.') == 1
      if top_level or (prefix != 'halluc_jax' and (module == prefix
                                                   or module.startswith(prefix + '.'))):
        if best is None or len(prefix) > best[1]:
          best = (rank, len(prefix))
  return best[0]


def _imports():
  """{module: {imported halluc_jax modules}}, by AST (lazy imports inside functions too)."""
  graph = {}
  for path in PACKAGE.rglob('*.py'):
    module = _module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('halluc_jax'):
        for alias in node.names:  # `from halluc_jax.x import y`: y may be a module
          candidate = f'{node.module}.{alias.name}'
          exists = (PACKAGE.parent / candidate.replace('.', '/')).with_suffix('.py').exists() or (
              PACKAGE.parent / candidate.replace('.', '/') / '__init__.py').exists()
          found.add(candidate if exists else node.module)
      elif isinstance(node, ast.Import):
        found.update(a.name for a in node.names if a.name.startswith('halluc_jax'))
    graph[module] = found - {module}
  return graph


def test_imports_point_down_the_layers():
  bad = [f'{m} ({LAYERS[_layer(m)][0]}) imports {i} ({LAYERS[_layer(i)][0]})'
         for m, imported in sorted(_imports().items()) for i in sorted(imported)
         if i != 'halluc_jax' and _layer(i) > _layer(m)]
  assert not bad, '\n'.join(bad)


def test_no_tool_imports_another_tool_and_the_trainer_imports_none():
  def is_tool(m):
    return m.startswith(TOOL_PACKAGES) and m not in TOOL_LIBRARIES and not m.endswith('__init__')
  graph = _imports()
  tools = {m for m in graph if is_tool(m) and m not in TOOL_PACKAGES}
  bad = [f'{m} imports the tool {i}' for m in sorted(tools) for i in sorted(graph[m]) if i in tools]
  assert not bad, '\n'.join(bad)
  assert not {i for i in graph['halluc_jax.train'] if is_tool(i)}
  assert not {i for i in graph['halluc_jax.main'] if is_tool(i)}


def test_layout_check_sees_a_wrong_way_import():
  """The checker itself: a core module importing a tool is reported."""
  assert _layer('halluc_jax.tools.plan') > _layer('halluc_jax.train') > _layer('halluc_jax.models.vivit')
  assert _layer('halluc_jax.perf.mfu') < _layer('halluc_jax.train')
  assert 'halluc_jax.setup' in _imports()['halluc_jax.train']
