#!/usr/bin/env python3
"""The README's "Limits" table, made from the two limits files, so it cannot drift from them.

Every `pub const NAME: T = VALUE;` of `engine/core/src/limits.rs` (the engine process) and
`bridge/src/limits.rs` (the bridge) becomes one row: the name, its value as written, and its
doc comment (what the bound is, its unit, what it stops). The table sits in README.md between
`<!-- limits:begin -->` and `<!-- limits:end -->`.

    python3 scripts/limits_table/generate.py          # rewrites the README's table
    python3 scripts/limits_table/generate.py --check  # exit 1 when the README's table is stale
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SOURCES = [
    ("engine", "engine/core/src/limits.rs"),
    ("bridge", "bridge/src/limits.rs"),
]
BEGIN = "<!-- limits:begin -->"
END = "<!-- limits:end -->"
CONST = re.compile(r"^pub const ([A-Z0-9_]+): [^=]+= (.+);\s*$")


def rows(path):
    """(name, value, doc) of every public constant of a limits file, in file order."""
    doc = []
    found = []
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        for line in handle:
            stripped = line.strip()
            if stripped.startswith("///"):
                doc.append(stripped[3:].strip())
                continue
            match = CONST.match(stripped)
            if match:
                text = " ".join(doc).replace("|", "\\|")
                found.append((match.group(1), match.group(2).strip(), text))
            doc = []
    return found


def table():
    lines = [
        BEGIN,
        "<!-- made by scripts/limits_table/generate.py from the limits files: edit those -->",
        "",
        "| process | bound | value | what it is and what it stops |",
        "|---|---|---|---|",
    ]
    for process, path in SOURCES:
        for name, value, doc in rows(path):
            lines.append(f"| {process} | `{name}` | `{value}` | {doc} |")
    lines.append(END)
    return "\n".join(lines)


def main():
    readme_path = os.path.join(ROOT, "README.md")
    with open(readme_path, encoding="utf-8") as handle:
        readme = handle.read()
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        print(f"README.md has no {BEGIN} … {END} section", file=sys.stderr)
        return 1
    updated = readme[:start] + table() + readme[end + len(END):]
    if "--check" in sys.argv[1:]:
        if updated != readme:
            print(
                "README.md's Limits table differs from the limits files: run "
                "python3 scripts/limits_table/generate.py",
                file=sys.stderr,
            )
            return 1
        print("README.md's Limits table matches the limits files")
        return 0
    with open(readme_path, "w", encoding="utf-8") as handle:
        handle.write(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
