"""scripts/pyspark_bytecode.py: a zip gets bytecode that imports from the zip load."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pyspark_bytecode.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pyspark_bytecode", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pb = _load()

SOURCES = {
    "pkg/": None,
    "pkg/__init__.py": "",
    "pkg/mod.py": "def answer():\n    return 42\n\ndef boom():\n    raise ValueError('x')\n",
    "pkg/broken.py": "def nope(:\n",
    "pkg/data.txt": "not python",
}


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in SOURCES.items():
            zf.writestr(name, "" if text is None else text)
    return path


def _run(zip_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(zip_path), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
        cwd=zip_path.parent,
    )  # fmt: skip


def test_every_module_that_compiles_gets_bytecode_next_to_its_source(tmp_path):
    path = _zip(tmp_path / "lib.zip")
    assert pb.add_bytecode(path) == 2  # __init__ and mod; broken.py does not compile
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert zf.read("pkg/data.txt") == b"not python"  # everything else is kept as it was
    assert names == {*SOURCES, "pkg/__init__.pyc", "pkg/mod.pyc"}


def test_an_import_from_the_zip_loads_the_bytecode_and_tracebacks_name_the_source(tmp_path):
    path = _zip(tmp_path / "lib.zip")
    pb.add_bytecode(path)
    done = _run(path, "import pkg.mod as m; print(m.__file__); print(m.answer()); m.boom()")
    printed = done.stdout.splitlines()
    assert printed == [f"{path}/pkg/mod.pyc", "42"]
    assert f'File "{path}/pkg/mod.py", line 5, in boom' in done.stderr
    # the module that did not compile fails as it would have without bytecode
    assert "SyntaxError" in _run(path, "import pkg.broken").stderr


def test_a_zip_with_bytecode_is_left_as_it_is(tmp_path):
    path = _zip(tmp_path / "lib.zip")
    path.chmod(0o640)
    pb.add_bytecode(path)
    assert path.stat().st_mode & 0o777 == 0o640  # the rewritten zip keeps the file's mode
    before = path.read_bytes()
    assert pb.add_bytecode(path) == 0
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_the_installed_pyspark_zips_have_bytecode_after_setup():
    """`make setup` ran the script: Spark's Python processes import compiled pyspark."""
    zips = {p.name for p in pb.spark_python_zips()}
    assert "pyspark.zip" in zips and any(z.startswith("py4j-") for z in zips)
    assert all(pb.has_bytecode(p) for p in pb.spark_python_zips())
