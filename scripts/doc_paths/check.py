#!/usr/bin/env python3
"""Every file a doc names exists: `path/to/file.ext` in backticks in the Markdown docs and in
Rust doc comments and comments (`//`), for .rs .md .py .sh .toml .js files.

A name resolves when it exists from the repository's root or from the naming file's folder, or
when some file of the repository ends with it (`shard/webhooks.rs`, `cluster/query.rs`). A `*`
in a name is a glob. Prints each name that resolves to nothing and exits 1; exits 0 when all do.
Run from anywhere: `python3 scripts/doc_paths/check.py [root]`.
"""

import fnmatch
import os
import re
import sys

EXTENSIONS = ("rs", "md", "py", "sh", "toml", "js")
# Names that look like files but are products.
NOT_FILES = {"uWebSockets.js", "Node.js"}
NAME = re.compile(r"`([A-Za-z0-9_\-./*{}]+\.(?:%s))`" % "|".join(EXTENSIONS))
SKIP_DIRS = {"target", "node_modules", ".git", ".venv", "fuzz/target"}


def repository_files(root):
    """Every file under `root`, as paths relative to it with `/`."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d for d in dirs if d not in SKIP_DIRS and not d.startswith((".", "target"))
        ]
        for name in files:
            found.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return found


def names_in(path, text):
    """(line, name) of every file name in backticks: anywhere in Markdown, in comments in Rust."""
    for number, line in enumerate(text.splitlines(), 1):
        if path.endswith(".rs"):
            at = line.find("//")
            if at < 0:
                continue
            line = line[at:]
        for name in NAME.findall(line):
            yield number, name


def resolves(name, naming_file, files, file_set):
    """True when `name` names a file of the repository (see the module doc)."""
    if "{" in name or name in NOT_FILES:
        return True  # a pattern such as `{app}.json` names no file
    name = name.lstrip("./") if name.startswith("./") else name
    here = os.path.dirname(naming_file)
    candidates = [name, os.path.normpath(os.path.join(here, name)).replace(os.sep, "/")]
    if "*" in name:
        return any(
            fnmatch.fnmatch(f, c) or fnmatch.fnmatch(f, "*/" + name) for f in files for c in candidates
        )
    if any(c in file_set for c in candidates):
        return True
    return any(f.endswith("/" + name) for f in files)


def check(root):
    files = repository_files(root)
    file_set = set(files)
    missing = []
    for path in files:
        if not path.endswith((".md", ".rs")) or path.startswith(("tests/compat/node_modules",)):
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        for number, name in names_in(path, text):
            if not resolves(name, path, files, file_set):
                missing.append(f"{path}:{number}: `{name}` names no file")
    return missing


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    missing = check(os.path.abspath(root))
    for line in missing:
        print(line)
    if missing:
        print(f"{len(missing)} file name(s) in docs and comments name no file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
