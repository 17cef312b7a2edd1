"""The package's layering: training (everything but inference/, app/ and the inference commands) never imports
jaxcolor.inference, not even inside a function, so the arrows point one way and there is no package cycle."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxcolor"
INFERENCE_SIDE = ("inference", "app", "colorize.py", "evaluate.py", "evaluate_hints.py")


def _imported_modules(tree: ast.AST) -> set[str]:
  """Every module an `import` / `from ... import` names, anywhere in the file (top level or in functions)."""
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _training_files() -> list[pathlib.Path]:
  return [f for f in sorted(PACKAGE.rglob("*.py")) if f.relative_to(PACKAGE).parts[0] not in INFERENCE_SIDE]


def test_the_walk_sees_the_training_modules_and_inference_imports():
  names = {f.relative_to(PACKAGE).as_posix() for f in _training_files()}
  assert {"train.py", "builders.py", "steps.py", "run_dir.py", "losses/objective.py", "models/unet.py"} <= names
  assert not any(n.startswith(("inference/", "app/")) or n == "colorize.py" for n in names)
  found = _imported_modules(ast.parse("from jaxcolor import inference\ndef f():\n  import jaxcolor.inference.merge\n"))
  assert {"jaxcolor.inference", "jaxcolor.inference.merge"} <= found


def test_training_does_not_import_inference():
  offenders = [f"{f.relative_to(PACKAGE)} imports {name}" for f in _training_files()
               for name in sorted(_imported_modules(ast.parse(f.read_text())))
               if name == "jaxcolor.inference" or name.startswith("jaxcolor.inference.")]
  assert not offenders, offenders
