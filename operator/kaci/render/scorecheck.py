"""A first look at score.py before building (pure): syntax and run()."""

from __future__ import annotations

import ast


def problem(source: str) -> str | None:
    """What is wrong with score.py in user words, or None."""
    try:
        tree = ast.parse(source, filename="score.py")
    except SyntaxError as e:
        return f"score.py has a syntax error at line {e.lineno}: {e.msg}"
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assigned = {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    imported = {
        (a.asname or a.name) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names
    }
    if "run" not in funcs | assigned | imported:
        return (
            "score.py defines no run(raw_data) function: "
            "Azure's entry script needs init() and run()"
        )
    if "init" not in funcs | assigned | imported:
        return "score.py defines no init() function: Azure's entry script needs init() and run()"
    return None
