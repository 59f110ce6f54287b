"""Reference sections generated from the code at every `mkdocs build` (docs/gen/hooks.py puts
them where a page says `<!-- dlw:NAME -->`), so they cannot drift from it:

- cli: every `dlw` command, walked from the typer app (typer.main.get_command), with its usage,
  help, arguments and options exactly as `--help` shows them;
- config: every key of dlworkflow.yaml from the pydantic JSON Schema (`dlw config schema`),
  with its type, constraints, default and description;
- errors: every DlwError subclass (found by reading the source, so a new one is never left
  out), its exit code, and every place that raises it with its message and fix;
- http-errors: every error `dlw serve` answers (status, error code, message, fix);
- quarantine: every reason ingest quarantines a sample for;
- datasets: the built-in real datasets (`dlw datasets`).

Tables and lists are written as HTML (escaped here) so that no text from the code is read as
Markdown; headings stay Markdown, so they are in the table of contents.
"""

from __future__ import annotations

import ast
import functools
import html
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dlworkflow"


# ---- small HTML helpers -----------------------------------------------------------------------
def inline(text: str) -> str:
    """Escaped text whose `backtick spans` become <code>."""
    parts = re.split(r"(`[^`]+`)", text)
    return "".join(
        f"<code>{html.escape(p[1:-1])}</code>"
        if p.startswith("`") and len(p) > 1
        else html.escape(p)
        for p in parts
    )


def code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """An HTML table on lines without blank lines (one raw HTML block); cells already HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---- CLI ----------------------------------------------------------------------------------------
def cli_commands() -> list[tuple[str, Any, Any]]:
    """(full name, command, context) for `dlw` itself (its global options), then every leaf
    command, in `--help` order."""
    import typer

    from dlworkflow.cli import app

    root = typer.main.get_command(app)
    context_type = type(root).context_class
    out: list[tuple[str, Any, Any]] = [("dlw", root, context_type(root, info_name="dlw"))]

    def walk(group: Any, ctx: Any, prefix: str) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            sub = context_type(command, info_name=name, parent=ctx)
            if hasattr(command, "list_commands"):
                walk(command, sub, f"{prefix} {name}")
            else:
                out.append((f"{prefix} {name}", command, sub))

    walk(root, out[0][2], "dlw")
    return out


def cli_markdown() -> str:
    commands = cli_commands()
    lines = [
        table(
            ("command", "what it does"),
            [
                (
                    f'<a href="#{slug(name)}">{code(name)}</a>',
                    inline(_first_sentence(cmd.help or "")),
                )
                for name, cmd, _ in commands
            ],
        ),
        "",
    ]
    for name, command, ctx in commands:
        lines += [f"## {name} {{#{slug(name)}}}", ""]
        usage = command.get_usage(ctx).removeprefix("Usage: ")
        lines += [f"<pre><code>{html.escape(usage)}</code></pre>", ""]
        for paragraph in (command.help or "").split("\n\n"):
            lines += ["<p>" + inline(" ".join(paragraph.split())) + "</p>", ""]
        rows = []
        for param in command.params:
            record = param.get_help_record(ctx)
            if record is None:
                continue
            kind = "argument" if type(param).__name__.endswith("Argument") else "option"
            rows.append((code(record[0]), kind, inline(" ".join(record[1].split()))))
        if rows:
            lines += [table(("argument / option", "kind", "help"), rows), ""]
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    """The first paragraph of a command's help (its summary)."""
    return " ".join(text.split("\n\n")[0].split())


class UndocumentedError(ValueError):
    """Something in the code has no text to document it with; the hook turns it into a
    warning, so the strict build fails."""


# ---- configuration ------------------------------------------------------------------------------
def config_schema() -> dict[str, Any]:
    from dlworkflow.config import json_schema

    return json_schema()


def config_defaults() -> dict[str, Any]:
    from dlworkflow.config import ProjectConfig

    return ProjectConfig.model_validate({"name": "NAME"}).model_dump(mode="json")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _object_of(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema behind a property (through $ref and `X | null`), if it is one."""
    node = _resolve(schema, node)
    if "properties" in node:
        return node
    for option in node.get("anyOf", []):
        option = _resolve(schema, option)
        if "properties" in option:
            return option
    return None


def _type_of(schema: dict[str, Any], node: dict[str, Any]) -> str:
    if "$ref" in node:
        target = _resolve(schema, node)
        return "mapping" if "properties" in target else _type_of(schema, target)
    if "anyOf" in node:
        return " or ".join(_type_of(schema, option) for option in node["anyOf"])
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    if "const" in node:
        return repr(node["const"])
    kind = node.get("type", "any")
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_type_of(schema, i) for i in node["prefixItems"]) + "]"
        return f"list of {_type_of(schema, node.get('items', {}))}"
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict) and _object_of(schema, values):
            return "mapping of name to mapping"
        return "mapping"
    return {
        "integer": "integer",
        "number": "number",
        "string": "string",
        "boolean": "boolean",
        "null": "null",
    }.get(kind, str(kind))


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for options in [node, *node.get("anyOf", [])]:
        for key, sign in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
            ("minLength", "length >="),
            ("maxLength", "length <="),
        ):
            if key in options:
                parts.append(f"{sign} {options[key]}")
    return ", ".join(parts)


MISSING = object()  # a key without a default (required, or under a free mapping)


def config_entries() -> Iterator[tuple[str, dict[str, Any], Any, int]]:
    """(dotted key, property schema, default, depth) for every key, depth first; the keys
    of a free mapping (tune.space) are written <name>."""
    schema = config_schema()
    defaults = config_defaults()
    missing = MISSING

    def walk(
        obj: dict[str, Any], prefix: str, default: Any, depth: int
    ) -> Iterator[tuple[str, dict[str, Any], Any, int]]:
        required = set(obj.get("required", []))
        for key, prop in obj["properties"].items():
            dotted = f"{prefix}{key}"
            value = default.get(key, missing) if isinstance(default, dict) else missing
            if key in required:
                value = missing
            if value is missing:
                value = prop.get("default", missing)
            yield dotted, prop, value, depth
            child = _object_of(schema, prop)
            if child is not None:
                yield from walk(child, dotted + ".", value, depth + 1)
            values = _resolve(schema, prop).get("additionalProperties")
            if isinstance(values, dict) and (item := _object_of(schema, values)):
                yield from walk(item, dotted + ".<name>.", missing, depth + 1)

    yield from walk(schema, "", defaults, 0)


def _default_text(value: Any) -> str:
    import json

    if value is None:
        return code("null")
    if isinstance(value, (dict, list)) and not value:
        return code(json.dumps(value))
    if isinstance(value, dict):
        return "(the keys below)"
    if isinstance(value, bool):
        return code(str(value).lower())
    return code(json.dumps(value) if isinstance(value, (list, str)) else str(value))


def config_markdown() -> str:
    schema = config_schema()
    sections: list[tuple[str, str, list[tuple[str, ...]]]] = [("top", "", [])]
    undocumented: list[str] = []
    for dotted, prop, default, depth in config_entries():
        obj = _object_of(schema, prop)
        if depth == 0 and obj is not None:
            sections.append((dotted, obj.get("description") or "", []))
            continue
        description = prop.get("description") or (obj or {}).get("description") or ""
        if not description and not dotted.startswith("audit."):
            undocumented.append(dotted)
        extra = _constraints(prop)
        cells = (
            code(dotted),
            html.escape(_type_of(schema, prop)),
            "(required)" if default is MISSING else _default_text(default),
            inline(description) + (f" <em>({html.escape(extra)})</em>" if extra else ""),
        )
        sections[-1][2].append(cells)
    if undocumented:
        raise UndocumentedError(
            f"config keys without a description: {', '.join(undocumented)}; add "
            "description=... to their Field in dlworkflow/config.py"
        )
    lines = []
    for name, description, rows in sections:
        if name == "top":
            lines += ["## Top-level keys {#top-level}", ""]
        else:
            lines += [f"## {name} {{#{slug(name)}}}", ""]
            if description:
                lines += ["<p>" + inline(" ".join(description.split())) + "</p>", ""]
        lines += [table(("key", "type", "default", "description"), rows), ""]
    return "\n".join(lines)


# ---- errors (read from the source: nothing is imported) ----------------------------------------
@functools.cache
def _modules() -> tuple[tuple[str, ast.Module], ...]:
    return tuple(
        (
            path.relative_to(ROOT).as_posix(),
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path)),
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    )


def _text(node: ast.AST | None) -> str:
    """A string expression as written: f-string fields shown as {expr}."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            "{" + ast.unparse(v.value) + "}" if isinstance(v, ast.FormattedValue) else _text(v)
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return "{" + ast.unparse(node) + "}"


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def error_classes() -> dict[str, dict[str, Any]]:
    """Every class deriving (through any chain) from DlwError, by name."""
    classes: dict[str, dict[str, Any]] = {}
    duplicates: set[str] = set()
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                exit_code = None
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and any(
                            isinstance(t, ast.Name) and t.id == "exit_code" for t in stmt.targets
                        )
                        and isinstance(stmt.value, ast.Constant)
                    ):
                        exit_code = stmt.value.value
                if node.name in classes:
                    duplicates.add(node.name)
                classes[node.name] = {
                    "module": rel,
                    "line": node.lineno,
                    "doc": ast.get_docstring(node) or "",
                    "bases": [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases],
                    "exit_code": exit_code,
                }
    errors = {"DlwError"}
    changed = True
    while changed:
        changed = False
        for name, info in classes.items():
            if name not in errors and any(b in errors for b in info["bases"]):
                errors.add(name)
                changed = True
    if errors & duplicates:
        raise ValueError(
            f"two error classes named {sorted(errors & duplicates)}: the error "
            "page needs unique names"
        )
    chosen = {name: classes[name] for name in errors}
    for name, info in chosen.items():  # inherited exit codes
        base, code_ = name, info["exit_code"]
        while code_ is None:
            base = next(b for b in chosen[base]["bases"] if b in chosen or b == "Exception")
            code_ = chosen[base]["exit_code"] if base in chosen else None
        info["effective_exit_code"] = code_
    return chosen


def _raise_sites(names: set[str]) -> dict[str, list[dict[str, str]]]:
    sites: dict[str, list[dict[str, str]]] = {name: [] for name in names}
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in names:
                kw = {k.arg: k.value for k in node.keywords if k.arg}
                what = node.args[0] if node.args else kw.get("what")
                sites[_call_name(node) or ""].append(
                    {
                        "where": f"{rel}:{node.lineno}",
                        "what": _text(what),
                        "expected": _text(kw.get("expected")),
                        "fix": _text(kw.get("fix")),
                    }
                )
    return sites


def _tree_order(classes: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def visit(name: str, depth: int) -> None:
        out.append((name, depth))
        for child in sorted(c for c, i in classes.items() if name in i["bases"]):
            visit(child, depth + 1)

    visit("DlwError", 0)
    return out


def errors_markdown() -> str:
    classes = error_classes()
    sites = _raise_sites(set(classes))
    order = _tree_order(classes)
    overview = [
        (
            f'{"&nbsp;" * 4 * depth}<a href="#{slug(name)}">{code(name)}</a>',
            str(classes[name]["effective_exit_code"]),
            inline(classes[name]["doc"].split("\n\n")[0].replace("\n", " ")),
            str(len(sites[name])),
        )
        for name, depth in order
    ]
    lines = [table(("error class", "exit code", "meaning", "raised at"), overview), ""]
    for name, _ in order:
        info = classes[name]
        lines += [f"### {name} {{#{slug(name)}}}", ""]
        base = ", ".join(info["bases"])
        lines += [
            f"<p>{inline(' '.join(info['doc'].split()))}</p>",
            f"<p>Exit code <strong>{info['effective_exit_code']}</strong>; a subclass "
            f"of {code(base)}; defined in {code(info['module'])}, line {info['line']}."
            "</p>",
            "",
        ]
        rows = [
            (
                inline(s["what"])
                + (f"<br><em>expected:</em> {inline(s['expected'])}" if s["expected"] else ""),
                inline(s["fix"]) or "(see the message)",
                code(s["where"]),
            )
            for s in sorted(sites[name], key=lambda s: s["where"])
        ]
        if rows:
            lines += [table(("message", "fix", "raised at"), rows), ""]
        else:
            lines += ["<p>Not raised directly; see its subclasses.</p>", ""]
    return "\n".join(lines)


def http_errors_markdown() -> str:
    """Every ApiError(status, code, message, ...) of the server, and its helper functions."""
    rows = []
    for rel, tree in _modules():
        if "/deploy/serve/" not in rel:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _call_name(node) == "ApiError"
                and len(node.args) >= 3
                and isinstance(node.args[0], ast.Constant)
            ):
                kw = {k.arg: k.value for k in node.keywords if k.arg}
                rows.append(
                    (
                        str(node.args[0].value),
                        code(_text(node.args[1])),
                        inline(_text(node.args[2])),
                        inline(_text(kw.get("fix"))),
                        code(f"{rel}:{node.lineno}"),
                    )
                )
            if (
                isinstance(node, ast.Call)
                and _call_name(node) == "unauthorized"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                rows.append(
                    (
                        "401",
                        code("unauthorized"),
                        inline(_text(node.args[0])),
                        inline(
                            "send `Authorization: Bearer <token>`: the token in "
                            ".dlw/serve/token (`dlw serve` prints its path), serve.token "
                            "or DLW_SERVE_TOKEN"
                        ),
                        code(f"{rel}:{node.lineno}"),
                    )
                )
    rows = [r for r in rows if "{message}" not in r[2]]  # the helpers' own bodies
    rows.sort(key=lambda r: (r[0], r[1], r[4]))
    return table(("status", "error", "message", "fix", "raised at"), rows)


# ---- quarantine reasons -------------------------------------------------------------------------
QUARANTINE_CALLS = {"ImageDecodeError", "Quarantined", "AudioDecodeError"}
QUARANTINE_PACKAGES = ("dlworkflow/data/", "dlworkflow/store/")  # what `dlw ingest` runs
REASON_NAMES = {"problem", "reason"}  # local variables that hold a sample's reason
#: store/ts_format.case_results turns a DataError of these per-case readers into one series'
#: reason, "{what} (expected ...; received ...)", which the sequence source prefixes with
#: "line N: " (the header's own errors stay a DataError of the whole file)
TS_FORMAT = "dlworkflow/store/ts_format.py"
TS_CASE_READERS = ("_case", "_values", "_value")

Function = ast.FunctionDef | ast.AsyncFunctionDef


class _Reasons:
    """The quarantine reasons of the ingest packages, followed through the code: a reason is a
    string given to a quarantine call (ImageDecodeError, AudioDecodeError, Quarantined), put
    in a candidate's `problem`, or held by a local `problem` / `reason`; a name is followed to
    what it was assigned in its function (a tuple unpacked element by element), and a call to
    a function of these packages to the strings it returns (audio_problem, series_problem,
    fill_gaps, ...)."""

    def __init__(self) -> None:
        self.trees = {r: t for r, t in _modules() if r.startswith(QUARANTINE_PACKAGES)}
        self.owner: dict[str, dict[ast.AST, Function]] = {}
        self.defs: dict[str, dict[str, list[Function]]] = {}
        self.imports: dict[str, dict[str, str]] = {}
        for rel, tree in self.trees.items():
            self.owner[rel], self.defs[rel] = _scopes(tree)
            self.imports[rel] = _imported_modules(tree)
        self.found: set[tuple[str, str]] = set()
        self._busy: set[tuple[Any, ...]] = set()

    def add(self, text: str, where: str) -> None:
        if re.search(r"[a-z]", re.sub(r"\{[^{}]*\}", "", text)):  # not a bare pass-on
            self.found.add((text, where))

    def leaves(self, node: ast.AST | None, rel: str, index: int | None = None) -> None:
        """Every string `node` (element `index` of it, when it is a tuple) can be."""
        if node is None:
            return
        if index is not None and isinstance(node, ast.Tuple):
            if index < len(node.elts):
                self.leaves(node.elts[index], rel)
        elif isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and index is None
        ):
            self.add(_text(node), f"{rel}:{node.lineno}")
        elif isinstance(node, ast.BoolOp):  # `a and b` is a reason only as b
            for value in node.values if isinstance(node.op, ast.Or) else node.values[-1:]:
                self.leaves(value, rel, index)
        elif isinstance(node, ast.IfExp):
            self.leaves(node.body, rel, index)
            self.leaves(node.orelse, rel, index)
        elif isinstance(node, ast.Name):
            self._assigned(node, rel, index)
        elif isinstance(node, ast.Call):
            self._returned(node, rel, index)

    def _assigned(self, name: ast.Name, rel: str, index: int | None) -> None:
        """What `name` was assigned in its function (a tuple target: that element)."""
        scope = self.owner[rel].get(name)
        key = (rel, id(scope), name.id, index)
        if scope is None or key in self._busy:
            return
        self._busy.add(key)
        for node in ast.walk(scope):
            if not isinstance(node, ast.Assign) or self.owner[rel].get(node) is not scope:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name.id:
                    self.leaves(node.value, rel, index)
                elif isinstance(target, ast.Tuple):
                    for i, elt in enumerate(target.elts):
                        if isinstance(elt, ast.Name) and elt.id == name.id:
                            self.leaves(node.value, rel, i)

    def _returned(self, call: ast.Call, rel: str, index: int | None) -> None:
        """What the called function of these packages returns (element `index`)."""
        for callee_rel, function in self._callees(call, rel):
            key = (callee_rel, id(function), index)
            if key in self._busy:
                continue
            self._busy.add(key)
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and self.owner[callee_rel].get(node) is function:
                    self.leaves(node.value, callee_rel, index)

    def _callees(self, call: ast.Call, rel: str) -> list[tuple[str, Function]]:
        """The functions a call may run: by its name in the same module (a method too), else
        in the module the name is imported from."""
        name = _call_name(call)
        if name is None:
            return []
        if name in self.defs[rel]:
            return [(rel, f) for f in self.defs[rel][name]]
        source = self.imports[rel].get(name)
        if isinstance(call.func, ast.Name) and source in self.defs:
            return [(source, f) for f in self.defs[source].get(name, [])]
        return []


def _scopes(tree: ast.Module) -> tuple[dict[ast.AST, Function], dict[str, list[Function]]]:
    """(the innermost function of every node, the module's functions and methods by name)."""
    owner: dict[ast.AST, Function] = {}
    defs: dict[str, list[Function]] = {}
    for function in ast.walk(tree):  # outer functions first, so inner ones win
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs.setdefault(function.name, []).append(function)
            for node in ast.walk(function):
                if node is not function:
                    owner[node] = function
    return owner, defs


def _imported_modules(tree: ast.Module) -> dict[str, str]:
    """name -> the source file of the dlworkflow module it is imported from."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlworkflow."):
            path = (node.module or "").replace(".", "/")
            rel = f"{path}.py" if (ROOT / f"{path}.py").is_file() else f"{path}/__init__.py"
            for alias in node.names:
                out[alias.asname or alias.name] = rel
    return out


def quarantine_reasons() -> list[tuple[str, str]]:
    """(reason as written, where) for every sample-level quarantine in the source: the
    quarantine calls' reasons, the `problem` a source gives a candidate, the reasons held by a
    local `problem` / `reason`, each followed to the strings it can be (_Reasons), the bad
    rows of tables.py's `_features`, and the per-case failures of a .ts file."""
    reasons = _Reasons()
    for rel, tree in reasons.trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "_features":
                for ret in ast.walk(node):  # tables.py: (values, "reason") for a bad row
                    if (
                        isinstance(ret, ast.Return)
                        and isinstance(ret.value, ast.Tuple)
                        and len(ret.value.elts) == 2
                    ):
                        for text in _string_leaves(ret.value.elts[1]):
                            reasons.found.add(("{where}: " + text, f"{rel}:{ret.lineno}"))
            reasons.leaves(_reason_given(node), rel)
    reasons.found.update(_ts_case_reasons(reasons))
    found = reasons.found
    return sorted(found, key=lambda f: (f[1].split(":")[0], int(f[1].split(":")[1]), f[0]))


def _reason_given(node: ast.AST) -> ast.AST | None:
    """The expression that gives a sample its reason at `node`, if any: a quarantine call's
    first argument, a `problem=` keyword, or what is assigned to `x.problem`, `problem` or
    `reason`."""
    if isinstance(node, ast.Call) and _call_name(node) in QUARANTINE_CALLS and node.args:
        return node.args[0]
    if isinstance(node, ast.keyword) and node.arg == "problem":
        return node.value
    if isinstance(node, ast.Assign) and any(
        (isinstance(t, ast.Attribute) and t.attr == "problem")
        or (isinstance(t, ast.Name) and t.id in REASON_NAMES)
        for t in node.targets
    ):
        return node.value
    return None


def _ts_case_reasons(reasons: _Reasons) -> set[tuple[str, str]]:
    """`line N: {what} (expected ...; received ...)` of each _fail in the .ts per-case
    readers; a reader that is gone is an error, so the list cannot silently go stale."""
    defs = reasons.defs[TS_FORMAT]
    missing = [name for name in TS_CASE_READERS if name not in defs]
    if missing:
        raise UndocumentedError(
            f"{TS_FORMAT} has no {', '.join(missing)}: update TS_CASE_READERS in "
            "docs/gen/reference.py to the functions case_results runs per case"
        )
    out = set()
    for name in TS_CASE_READERS:
        for node in ast.walk(defs[name][0]):
            if isinstance(node, ast.Call) and _call_name(node) == "_fail" and len(node.args) > 2:
                kw = {k.arg: k.value for k in node.keywords if k.arg}
                text = (
                    f"line {{line}}: {_text(node.args[2])} (expected {_text(kw.get('expected'))}"
                    f"; received {_text(kw.get('received'))})"
                )
                out.add((text, f"{TS_FORMAT}:{node.lineno}"))
    return out


def _string_leaves(node: ast.AST) -> Iterator[str]:
    """The string literals an expression can evaluate to (through `or`, `and`, `x if c else y`)."""
    if isinstance(node, (ast.Constant, ast.JoinedStr)):
        if not (isinstance(node, ast.Constant) and not isinstance(node.value, str)):
            yield _text(node)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _string_leaves(value)
    elif isinstance(node, ast.IfExp):
        yield from _string_leaves(node.body)
        yield from _string_leaves(node.orelse)


def quarantine_markdown() -> str:
    rows = [(inline(text), code(where)) for text, where in quarantine_reasons()]
    return table(("reason (as recorded in .dlw/quarantine.parquet)", "decided at"), rows)


# ---- built-in datasets --------------------------------------------------------------------------
def datasets_markdown() -> str:
    from dlworkflow.datasets import list_builtins

    rows = [
        (
            code(f"builtin:{d.name}"),
            html.escape(d.task),
            f"{d.n_samples:,}",
            html.escape(d.size),
            inline(d.description),
            html.escape(d.licence)
            + ("" if d.redistributable else " <em>(not redistributable)</em>"),
            html.escape(d.source),
            html.escape(d.package),
        )
        for d in list_builtins()
    ]
    return table(
        ("source", "task", "samples", "size", "what", "licence", "origin", "package"), rows
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "datasets": datasets_markdown,
    "cli": cli_markdown,
    "config": config_markdown,
    "errors": errors_markdown,
    "http-errors": http_errors_markdown,
    "quarantine": quarantine_markdown,
}
