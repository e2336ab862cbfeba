"""Rewrite a staged pyproject.toml for the cluster wheel (used by scripts/build.sh).

Moves the requirements that a Spark runtime provides (``pyspark``, ``delta-spark``) from
``[project] dependencies`` to the optional extra ``spark`` and writes the remaining runtime
requirements to a requirements file (for the EMR bootstrap action and venv-pack recipe).

    python scripts/cluster_pyproject.py STAGED_PYPROJECT REQUIREMENTS_OUT
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PROVIDED = ("pyspark", "delta-spark")
_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)")


def is_provided(requirement: str) -> bool:
    """True for a requirement the Spark runtime ships (its distribution name is in PROVIDED)."""
    m = _NAME.match(requirement)
    return bool(m) and m.group(1).lower().replace("_", "-") in PROVIDED


def rewrite(text: str) -> tuple[str, list[str]]:
    """(new pyproject text, cluster requirements). Idempotent when nothing is provided."""
    project = tomllib.loads(text)["project"]
    deps: list[str] = list(project["dependencies"])
    provided = [d for d in deps if is_provided(d)]
    keep = [d for d in deps if not is_provided(d)]
    if not provided:
        return text, keep
    lines = [
        line
        for line in text.splitlines()
        if not any(re.fullmatch(rf'\s*"{re.escape(d)}",?\s*(#.*)?', line) for d in provided)
    ]
    extra = "spark = [" + ", ".join(f'"{d}"' for d in provided) + "]"
    out = "\n".join(lines) + "\n"
    if "[project.optional-dependencies]" in out:
        out = out.replace(
            "[project.optional-dependencies]", f"[project.optional-dependencies]\n{extra}", 1
        )
    else:
        out += f"\n[project.optional-dependencies]\n{extra}\n"
    check = tomllib.loads(out)["project"]
    if sorted(check["dependencies"]) != sorted(keep):
        raise SystemExit(f"cluster_pyproject: could not move {provided} out of dependencies")
    return out, keep


def main(argv: list[str]) -> int:
    pyproject, requirements = Path(argv[0]), Path(argv[1])
    text, keep = rewrite(pyproject.read_text())
    pyproject.write_text(text)
    requirements.write_text("".join(f"{d}\n" for d in keep))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
