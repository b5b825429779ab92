"""How far `config` and the draw's `layout` travel through the package (a design metric, not a
speed): for each name, the functions that take it as a parameter, the files they live in, and
the call sites that pass it on. Run: python benchmarks/config_walk.py [--list]."""

import ast
import pathlib
import sys

NAMES = ("config", "layout")
PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "genimg_jax"


def walk(name: str):
  """(functions taking `name`: ["file:function"], call sites passing `name`: ["file:line"])."""
  takers, passes = [], []
  for path in sorted(PACKAGE.rglob("*.py")):
    rel = path.relative_to(PACKAGE.parent)
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        if name in params:
          takers.append(f"{rel}:{getattr(node, 'name', '<lambda>')}")
      elif isinstance(node, ast.Call):
        values = list(node.args) + [k.value for k in node.keywords]
        if any(isinstance(v, ast.Name) and v.id == name for v in values):
          passes.append(f"{rel}:{node.lineno}")
  return takers, passes


def main():
  for name in NAMES:
    takers, passes = walk(name)
    files = {t.split(":")[0] for t in takers}
    print(f"{name}: taken by {len(takers)} functions in {len(files)} files; "
          f"passed on at {len(passes)} call sites")
    if "--list" in sys.argv:
      for t in takers:
        print("  ", t)


if __name__ == "__main__":
  main()
