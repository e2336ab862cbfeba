"""Add compiled bytecode to the zips Spark's own Python processes import pyspark from, at set-up.

    .venv/bin/python scripts/pyspark_bytecode.py [ZIP ...]

Spark starts Python processes of its own - the worker daemons, the Python data source
planners, one streaming source runner per query - with ``pyspark.zip`` and py4j's zip first
on their ``PYTHONPATH`` (``pyspark/python/lib`` of the installed package; without arguments,
those). Python imports modules from a zip but never writes their bytecode into it, so each of
those processes compiles pyspark's modules from source every time it starts. This rewrites
each zip with a ``.pyc`` next to every ``.py`` (the layout zip imports look for), compiled
with unchecked hashes: a zip is only ever replaced whole (a pyspark reinstall), so its
bytecode cannot go stale on its own. The sources stay, for tracebacks. A zip that already
has bytecode is left as it is; a module that does not compile keeps only its source. Run it
while no Spark job runs (set-up does): a running Python process that imports from a zip
keeps that zip's index and cannot read a rewritten one.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path


def spark_python_zips() -> list[Path]:
    """The zips under the installed pyspark's ``python/lib``."""
    import pyspark

    return sorted((Path(pyspark.__file__).parent / "python" / "lib").glob("*.zip"))


def has_bytecode(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith(".pyc") for name in zf.namelist())


def add_bytecode(path: Path) -> int:
    """Rewrite the zip at ``path`` with a ``.pyc`` next to each ``.py`` it can compile; the
    number of ``.pyc`` added (0: it had bytecode already). The new zip replaces the old one in
    one rename, so an interrupted run leaves the old zip."""
    if has_bytecode(path):
        return 0
    with tempfile.TemporaryDirectory(prefix="pyspark-bytecode-") as tmp:
        tree = Path(tmp) / "tree"
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            zf.extractall(tree)
        # ddir: tracebacks name the module inside the zip, as an import from source would
        compileall.compile_dir(
            tree, quiet=2, legacy=True, ddir=str(path), workers=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )  # fmt: skip
        staged = path.with_name(path.name + ".tmp")
        try:
            added = _write(staged, infos, tree)
            shutil.copymode(path, staged)
            os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
    return added


def _write(staged: Path, infos: list[zipfile.ZipInfo], tree: Path) -> int:
    added = 0
    with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as out:
        for info in infos:
            out.writestr(info, b"" if info.is_dir() else (tree / info.filename).read_bytes())
            pyc = tree / (info.filename + "c")
            if info.filename.endswith(".py") and pyc.is_file():
                pyc_info = zipfile.ZipInfo(info.filename + "c", date_time=info.date_time)
                pyc_info.compress_type = zipfile.ZIP_DEFLATED
                pyc_info.external_attr = info.external_attr
                out.writestr(pyc_info, pyc.read_bytes())
                added += 1
    return added


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    for path in [Path(a) for a in args] or spark_python_zips():
        added = add_bytecode(path)
        state = f"{added} modules compiled" if added else "up to date"
        print(f"setup: bytecode in {path.name} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
