#!/usr/bin/env python3
"""Import circles between the modules of each crate: prints every circle and exits 1 if any.

A module is a file (`x.rs` or `x/mod.rs`). An edge A -> B is a path in A that names an item of
B: `crate::b::…` or `super::…`, in `use` lines and in code. Unit tests (`#[cfg(test)]` and what
follows) are left out: they are part of the module they test. Usage:
  scripts/import-cycles.py [CRATE_ROOT_DIR …]   from the repository root
  (default: server/src app/src server/src/bin/vcd-sim)
"""
import pathlib
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH = re.compile(rf"\b(crate|super)((?:::{IDENT})+|::\{{)")


def module_of(root: pathlib.Path, file: pathlib.Path) -> tuple:
    rel = file.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def resolve(modules: set, segments: list) -> tuple:
    """The longest prefix of `segments` that is a module."""
    for end in range(len(segments), -1, -1):
        if tuple(segments[:end]) in modules:
            return tuple(segments[:end])
    return ()


def expand_group(text: str, start: int) -> list:
    """The paths of a `{a, b::c, d::{e, f}}` group starting at text[start] == '{'."""
    depth, i = 0, start
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                break
        i += 1
    inner = text[start + 1 : i]
    items, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    items.append(current)
    paths = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "{" in item:
            head = item[: item.index("{")].rstrip(":")
            for sub in expand_group(item, item.index("{")):
                paths.append([s for s in head.split("::") if s] + sub)
        else:
            paths.append([s for s in item.split(" as ")[0].split("::") if s and s != "self"])
    return paths


def edges_of(root: pathlib.Path) -> dict:
    files = [f for f in root.rglob("*.rs")]
    if root.name == "src":
        # A crate's bin targets are crates of their own.
        files = [f for f in files if "bin" not in f.relative_to(root).parts]
    modules = {module_of(root, f) for f in files}
    graph = {m: set() for m in modules}
    for file in files:
        here = module_of(root, file)
        text = file.read_text()
        text = text.split("#[cfg(test)]")[0]
        text = re.sub(r"//[^\n]*", "", text)
        for m in PATH.finditer(text):
            kind, rest = m.group(1), m.group(2)
            base = [] if kind == "crate" else list(here[:-1])
            tail_start = m.end()
            if kind == "super":
                # super::super::…
                while rest.startswith("::super"):
                    rest = rest[len("::super") :]
                    base = base[:-1]
            if rest == "::{":
                paths = expand_group(text, tail_start - 1)
            else:
                paths = [[s for s in rest.split("::") if s]]
            for path in paths:
                target = resolve(modules, base + path)
                if target != here and target != () and here[: len(target)] != target:
                    graph[here].add(target)
    return graph


def cycles(graph: dict) -> list:
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    repo = pathlib.Path.cwd()
    roots = sys.argv[1:] or ["server/src", "app/src", "server/src/bin/vcd-sim"]
    total = 0
    for root in roots:
        graph = edges_of(repo / root)
        found = cycles(graph)
        edges = sum(len(e) for e in graph.values())
        print(f"{root}: {len(graph)} modules, {edges} import edges, {len(found)} circles")
        for component in found:
            print("  circle: " + " ↔ ".join("::".join(m) or "crate" for m in component))
        total += len(found)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
