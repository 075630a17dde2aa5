#!/usr/bin/env python3
"""Fails when two source files of one crate import each other, directly or around a circle.

Imports go one way in ringcast: a file may use what the files below it define, never what a file
that uses it defines. Cargo already keeps crates acyclic; this check does the same for the files
inside each crate of the workspace, so the layout stays readable from the bottom up.

What counts as an import of file B by file A (both in one crate):
- a `use` item in A whose path leads into B's module (`crate::…`, `super::…`, `self::…`, or a
  child module's name), braces and renames expanded;
- a path written in A's code outside `use` (`crate::b::thing()`, `super::Thing`);
- a path that lands on a `pub use` re-export is followed to the file that defines the item, so a
  parent that re-exports its children does not join every child into one circle.
Declaring a child (`mod b;`) is not an import. Paths inside comments and strings are ignored;
inline modules (`mod tests { … }`) belong to their file, so `use super::*` there is no edge.

Usage: check.py [ROOT]   (ROOT defaults to the workspace; prints every circle, exits 1 if any)
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
SKIP_DIRS = {"target", "node_modules", ".git", "fuzz", "venv", ".venv"}


# ---- lexing: blank out comments, strings and chars, keep offsets (so line numbers hold) ----


def strip_code(src: str) -> str:
    out = []
    i, n = 0, len(src)

    def blank(text: str) -> str:
        return re.sub(r"[^\n]", " ", text)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', src[i:i + 300])) and (i == 0 or not re.match(r"[A-Za-z0-9_]", src[i - 1])):
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"' or (c == "b" and src.startswith('b"', i) and (i == 0 or not re.match(r"[A-Za-z0-9_]", src[i - 1]))):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(blank(src[i:j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', b'x') or a lifetime ('a): only the former is blanked.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'", src[i:i + 12])
            if m:
                out.append(blank(m.group(0)))
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ---- the module tree of one crate ----


@dataclass
class Module:
    path: tuple[str, ...]  # from the crate root
    file: str  # the file whose text holds it (inline modules share their file)
    children: dict[str, "Module"] = field(default_factory=dict)
    defined: set[str] = field(default_factory=set)  # items declared here
    reexports: dict[str, tuple[tuple[str, ...], "Module"]] = field(default_factory=dict)  # name -> (path, scope)
    uses: list[tuple[tuple[str, ...], int]] = field(default_factory=list)  # (path, line)
    parent: "Module | None" = None


ITEM_RE = re.compile(
    rf"\b(?:struct|enum|union|trait|fn|const|static|type|macro_rules!)\s+({IDENT})"
)


def split_use_tree(tree: str) -> list[tuple[list[str], str | None]]:
    """`a::{b, c::{d as e}, *}` -> [(['a','b'], None), (['a','c','d'], 'e'), (['a','*'], None)]."""
    tree = re.sub(r"\s+", "", tree)
    results: list[tuple[list[str], str | None]] = []

    def parse(s: str, prefix: list[str]) -> None:
        depth, start, parts = 0, 0, []
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = part[:brace].rstrip(":")
                segs = [x for x in head.split("::") if x] if head else []
                parse(part[brace + 1:part.rfind("}")], prefix + segs)
            else:
                results.append((prefix + part.split("::"), None))

    parse(tree, [])
    return results


def parse_use_trees(code: str) -> list[tuple[str, int, int]]:
    """Every `use …;` item as (tree text, offset, is_pub)."""
    found = []
    for m in re.finditer(r"\b(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]+);", code):
        found.append((m.group(2), m.start(), 1 if m.group(1) else 0))
    return found


def expand(tree: str) -> list[tuple[list[str], str | None]]:
    # Handle `as` before whitespace is dropped.
    aliases: list[tuple[list[str], str | None]] = []
    tree = re.sub(r"::\s+", "::", tree)
    # Rewrite `x as y` into `x@y` so the splitter keeps it in one part.
    tree = re.sub(rf"({IDENT}|\*)\s+as\s+({IDENT})", r"\1@\2", tree)
    for segs, _ in split_use_tree(tree):
        last = segs[-1]
        alias = None
        if "@" in last:
            last, alias = last.split("@", 1)
            segs = segs[:-1] + [last]
        aliases.append((segs, alias))
    return aliases


class Crate:
    def __init__(self, root_file: str):
        self.root_file = root_file
        self.modules: dict[tuple[str, ...], Module] = {}
        self.root = self._load(root_file, (), None, is_root=True)

    def _child_file(self, file: str, name: str, is_root: bool) -> str | None:
        base = os.path.dirname(file)
        stem = os.path.splitext(os.path.basename(file))[0]
        folder = base if (is_root or stem == "mod") else os.path.join(base, stem)
        for cand in (os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")):
            if os.path.exists(cand):
                return cand
        return None

    def _load(self, file: str, path: tuple[str, ...], parent: Module | None, is_root: bool = False) -> Module:
        with open(file, encoding="utf-8") as f:
            code = strip_code(f.read())
        top = Module(path, file, parent=parent)
        self.modules[path] = top
        # Scopes by brace depth: an inline `mod x {` opens a module until its closing brace.
        line_of = _line_index(code)
        stack: list[tuple[int, Module]] = [(0, top)]
        depth = 0
        pending_inline: Module | None = None
        tokens = re.finditer(rf"\{{|\}}|\bmod\s+({IDENT})\s*([;{{])", code)
        events = []
        for m in tokens:
            events.append(m)
        # Assign every `use` and inline path to the scope it sits in.
        uses = parse_use_trees(code)
        use_spans = [(off, off + len("use ") + len(t)) for t, off, _ in uses]
        scope_at: list[tuple[int, Module]] = [(0, top)]  # (offset, scope) changes
        for m in events:
            tok = m.group(0)
            if tok == "{":
                depth += 1
                if pending_inline is not None:
                    stack.append((depth, pending_inline))
                    scope_at.append((m.start(), pending_inline))
                    pending_inline = None
            elif tok == "}":
                if len(stack) > 1 and stack[-1][0] == depth:
                    stack.pop()
                    scope_at.append((m.start(), stack[-1][1]))
                depth -= 1
            else:
                name, end = m.group(1), m.group(2)
                scope = stack[-1][1]
                child_path = scope.path + (name,)
                if end == ";":
                    child_file = self._child_file(file, name, is_root) if scope is top else None
                    if child_file is None:
                        continue  # #[cfg]'d out or generated; nothing to read
                    child = self._load(child_file, child_path, scope)
                else:
                    child = Module(child_path, file, parent=scope)
                    self.modules[child_path] = child
                    pending_inline = child
                    depth += 1
                    stack.append((depth, child))
                    scope_at.append((m.end(), child))
                    pending_inline = None
                scope.children[name] = child
                scope.defined.add(name)

        def scope_for(offset: int) -> Module:
            cur = top
            for off, sc in scope_at:
                if off <= offset:
                    cur = sc
                else:
                    break
            return cur

        for m in ITEM_RE.finditer(code):
            scope_for(m.start()).defined.add(m.group(1))
        for tree, off, is_pub in uses:
            scope = scope_for(off)
            for segs, alias in expand(tree):
                segs = [s for s in segs if s]
                if not segs:
                    continue
                name = alias or segs[-1]
                if segs[-1] == "self":
                    segs = segs[:-1]
                    name = alias or (segs[-1] if segs else "")
                scope.uses.append((tuple(segs), line_of(off)))
                if is_pub and name and name != "*":
                    scope.reexports[name] = (tuple(segs), scope)
                elif name and name != "*":
                    scope.defined.discard(name)
        # Paths in code outside `use` items.
        for m in re.finditer(rf"(?<![A-Za-z0-9_:])((?:{IDENT}::)+{IDENT})", code):
            if any(a <= m.start() < b for a, b in use_spans):
                continue
            segs = tuple(m.group(1).split("::"))
            scope = scope_for(m.start())
            if segs[0] in ("crate", "super", "self") or segs[0] in scope.children:
                scope.uses.append((segs, line_of(m.start())))
        return top

    # Resolve a path written in `scope` to the file that defines what it names.
    def resolve(self, segs: tuple[str, ...], scope: Module, seen: int = 0) -> str | None:
        if seen > 16 or not segs:
            return None
        cur: Module | None
        first, rest = segs[0], list(segs[1:])
        if first == "crate":
            cur = self.root
        elif first == "self":
            cur = scope
        elif first == "super":
            cur = scope.parent
            while rest and rest[0] == "super" and cur is not None:
                cur = cur.parent
                rest.pop(0)
        elif first in scope.children:
            cur = scope.children[first]
        else:
            return None  # another crate, std, or a local item
        if cur is None:
            return None
        while rest and rest[0] in cur.children:
            cur = cur.children[rest.pop(0)]
        if rest and rest[0] in cur.reexports and rest[0] not in cur.defined:
            target, where = cur.reexports[rest[0]]
            followed = self.resolve(target, where, seen + 1)
            if followed is not None:
                return followed
        return cur.file

    def edges(self) -> dict[str, dict[str, tuple[str, int]]]:
        out: dict[str, dict[str, tuple[str, int]]] = {}
        for mod in self.modules.values():
            for segs, line in mod.uses:
                target = self.resolve(segs, mod)
                if target is None or target == mod.file:
                    continue
                out.setdefault(mod.file, {}).setdefault(target, ("::".join(segs), line))
        return out


def _line_index(code: str):
    starts = [0] + [m.end() for m in re.finditer("\n", code)]
    import bisect

    return lambda off: bisect.bisect_right(starts, off)


def strongly_connected(graph: dict[str, dict[str, tuple[str, int]]]) -> list[list[str]]:
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def crate_roots(root: str) -> list[str]:
    roots = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        if "Cargo.toml" not in filenames:
            continue
        for rel in ("src/lib.rs", "src/main.rs"):
            p = os.path.join(dirpath, rel)
            if os.path.exists(p):
                roots.append(p)
        for sub in ("src/bin", "tests", "benches", "examples"):
            d = os.path.join(dirpath, sub)
            if os.path.isdir(d):
                for name in sorted(os.listdir(d)):
                    p = os.path.join(d, name)
                    if name.endswith(".rs"):
                        roots.append(p)
                    elif os.path.exists(os.path.join(p, "main.rs")):
                        roots.append(os.path.join(p, "main.rs"))
    return roots


def check(root: str) -> list[str]:
    problems = []
    for crate_root in crate_roots(root):
        crate = Crate(crate_root)
        graph = crate.edges()
        for comp in strongly_connected(graph):
            rel = [os.path.relpath(f, root) for f in comp]
            lines = [f"import cycle among {len(comp)} files of the crate at {os.path.relpath(crate_root, root)}:"]
            members = set(comp)
            for a in comp:
                for b, (path, line) in sorted(graph.get(a, {}).items()):
                    if b in members:
                        lines.append(f"  {os.path.relpath(a, root)}:{line} -> {os.path.relpath(b, root)}  ({path})")
            problems.append("\n".join(lines))
            del rel
    return problems


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    problems = check(root)
    for p in problems:
        print(p)
    roots = crate_roots(root)
    if problems:
        print(f"{len(problems)} import cycle(s); imports must go one way (see scripts/import_cycles/check.py)")
        return 1
    print(f"no import cycles between files ({len(roots)} crate roots checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
