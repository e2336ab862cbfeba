"""The quarantine suite's ``QUARANTINE_REASONS`` is exactly the set of reason codes the decoder
and the parser can emit, so a new or renamed code cannot drift past the ``reason_known`` check.

The codes are inline literals in ``transforms/decode.py`` and ``transforms/parse.py`` (not
module constants), so they are read from the sources' syntax trees at the places that emit
them; a place of a shape this reader does not know fails the test instead of being skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from spark_jobs.quality.suites import QUARANTINE_REASONS

TRANSFORMS = Path(__file__).resolve().parents[2] / "spark_jobs" / "transforms"


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef]:
    return {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name(...)`` or ``<anything>.name(...)`` under ``node``."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            func = n.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                out.append(n)
    return out


def _str(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _lit_arg(node: ast.expr) -> ast.expr | None:
    """``x`` of ``F.lit(x)``, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        return node.args[0] if node.func.attr == "lit" else None
    return None


def decoder_reasons(source: str) -> set[str]:
    """Codes of decode.py: ``return None, "<code>", detail`` in the per-record decoder, and
    ``_record_level(KIND_BAD, F.lit("<code>"), ...)`` in the envelope/line explosion
    (``F.col("reason")`` there passes the decoder's own code on)."""
    tree = ast.parse(source)
    codes: set[str] = set()
    returns = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
    for ret in returns:
        value = ret.value
        if not (isinstance(value, ast.Tuple) and len(value.elts) == 3):
            continue
        first, reason = value.elts[0], value.elts[1]
        if not (isinstance(first, ast.Constant) and first.value is None):
            continue  # a success: (text, None, None)
        if _str(reason) is not None:
            codes.add(str(_str(reason)))
        else:  # passing on a code another function returned (collected there)
            assert isinstance(reason, ast.Name), ast.unparse(ret)
    bad_levels = [c for c in _calls(tree, "_record_level") if ast.unparse(c.args[0]) == "KIND_BAD"]
    assert bad_levels, "decode.py no longer builds bad records with _record_level(KIND_BAD, ...)"
    for call in bad_levels:
        reason = call.args[1]
        code = _lit_arg(reason)
        if code is not None and _str(code) is not None:
            codes.add(str(_str(code)))
        else:
            assert ast.unparse(reason) == "F.col('reason')", ast.unparse(call)
    return codes


def parser_reasons(source: str) -> set[str]:
    """Codes of parse.py: the values of the ``when``/``otherwise`` chain aliased to
    ``quarantine_reason``: ``F.lit("<code>")``, or ``F.lit(<name>)`` where ``<name>`` loops
    over the tuples a check function returns (its ``(code, failing, detail)`` literals)."""
    tree = ast.parse(source)
    functions = _functions(tree)
    aliases = [
        c for c in _calls(tree, "alias") if c.args and _str(c.args[0]) == "quarantine_reason"
    ]
    assert len(aliases) == 1, "parse.py should alias exactly one column to quarantine_reason"
    func = aliases[0].func
    assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name), ast.unparse(func)
    var = func.value
    owner = next(f for f in functions.values() if aliases[0] in ast.walk(f))
    assigns = [
        a for a in ast.walk(owner)
        if isinstance(a, ast.Assign) and any(getattr(t, "id", None) == var.id for t in a.targets)
    ]  # fmt: skip
    assert assigns, f"no assignment to {var.id}"
    codes: set[str] = set()
    for assign in assigns:
        values = [c.args[1] for c in _calls(assign.value, "when")]
        values += [c.args[0] for c in _calls(assign.value, "otherwise")]
        for value in values:
            arg = _lit_arg(value)
            assert arg is not None, ast.unparse(value)
            if _str(arg) is not None:
                codes.add(str(_str(arg)))
            else:
                assert isinstance(arg, ast.Name), ast.unparse(value)
                codes |= _looped_codes(owner, arg.id, functions)
    return codes


def _looped_codes(
    owner: ast.FunctionDef, name: str, functions: dict[str, ast.FunctionDef]
) -> set[str]:
    """``for name, ... in checks(...)``: the ``name`` element of every tuple ``checks`` returns."""
    loops = [
        f for f in ast.walk(owner)
        if isinstance(f, ast.For) and isinstance(f.target, ast.Tuple)
        and name in [getattr(e, "id", None) for e in f.target.elts]
    ]  # fmt: skip
    assert len(loops) == 1, f"{name} is not bound by one tuple loop in {owner.name}"
    loop = loops[0]
    assert isinstance(loop.target, ast.Tuple)
    index = [getattr(e, "id", None) for e in loop.target.elts].index(name)
    assert isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name)
    source_fn = functions[loop.iter.func.id]
    returns = [r.value for r in ast.walk(source_fn) if isinstance(r, ast.Return)]
    returns = [r for r in returns if isinstance(r, ast.List)]
    assert returns, f"{source_fn.name} should return a list of (code, ...) tuples"
    codes = set()
    for listed in returns:
        assert isinstance(listed, ast.List)
        for item in listed.elts:
            assert isinstance(item, ast.Tuple), ast.unparse(item)
            code = _str(item.elts[index])
            assert code is not None, ast.unparse(item)
            codes.add(code)
    return codes


def _sources() -> tuple[str, str]:
    return (TRANSFORMS / "decode.py").read_text(), (TRANSFORMS / "parse.py").read_text()


def test_the_suite_knows_exactly_the_codes_decoder_and_parser_emit():
    decode_src, parse_src = _sources()
    decoded, parsed = decoder_reasons(decode_src), parser_reasons(parse_src)
    # what the two modules emit today (the readers found every one of them)
    assert decoded == {"bad_gzip", "bad_utf8", "bad_json", "oversized", "empty"}
    assert {"field_count", "unknown_field", "start_after_end"} <= parsed
    assert {"bad_value", "bad_separator", "oversized"} <= parsed
    assert set(QUARANTINE_REASONS) == decoded | parsed
    assert len(QUARANTINE_REASONS) == len(set(QUARANTINE_REASONS))


@pytest.mark.parametrize(
    ("module", "old", "new", "added"),
    [
        ("decode", 'return None, "bad_utf8"', 'return None, "bad_text"', "bad_text"),
        ("decode", 'F.lit("bad_json"), F.lit("not a single', 'F.lit("not_json"), F.lit("not a single', "not_json"),
        ("parse", 'F.lit("unknown_field")', 'F.lit("unknown_column")', "unknown_column"),
        ("parse", '("protocol_range",', '("proto_range",', "proto_range"),
    ],
)  # fmt: skip
def test_a_code_changed_at_any_emitting_place_breaks_the_equality(
    module: str, old: str, new: str, added: str
):
    sources = dict(zip(("decode", "parse"), _sources(), strict=True))
    assert sources[module].count(old) == 1, f"{old!r} moved in {module}.py: update this case"
    sources[module] = sources[module].replace(old, new)
    got = decoder_reasons(sources["decode"]) | parser_reasons(sources["parse"])
    assert added in got
    assert got != set(QUARANTINE_REASONS)
