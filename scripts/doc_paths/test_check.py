#!/usr/bin/env python3
"""Self-tests of check.py: a stale name is found, names that exist in any of the accepted ways
are not, and code outside comments is not read as docs."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import check  # noqa: E402


def tree(files):
    root = tempfile.mkdtemp()
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(text)
    return root


class CheckTest(unittest.TestCase):
    def test_a_stale_name_is_found(self):
        root = tree({"docs/a.md": "see `bridge/src/gone.rs`\n", "bridge/src/here.rs": ""})
        self.assertEqual(check.check(root), ["docs/a.md:1: `bridge/src/gone.rs` names no file"])

    def test_names_from_the_root_the_folder_or_a_suffix_resolve(self):
        root = tree(
            {
                "README.md": "`bridge/src/redis/layout.rs`, `redis/layout.rs`, `docs/b.md`\n",
                "docs/b.md": "`c.md` and `bridge/src/redis/*.rs`\n",
                "docs/c.md": "",
                "bridge/src/redis/layout.rs": "//! see `../limits.rs`\n",
                "bridge/src/limits.rs": "",
            }
        )
        self.assertEqual(check.check(root), [])

    def test_rust_code_is_not_docs_but_its_comments_are(self):
        root = tree(
            {"src/a.rs": 'let s = "`gone.rs`";\n// but `also_gone.rs` is named here\n'}
        )
        self.assertEqual(check.check(root), ["src/a.rs:2: `also_gone.rs` names no file"])


if __name__ == "__main__":
    unittest.main()
