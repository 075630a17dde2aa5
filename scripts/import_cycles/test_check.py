#!/usr/bin/env python3
"""Tests of check.py on small crates written here: it must find a circle where there is one and
stay quiet where imports go one way, so a green run of the check means something."""

import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402


def crate(files: dict[str, str]) -> str:
    root = tempfile.mkdtemp(prefix="import-cycles-")
    with open(os.path.join(root, "Cargo.toml"), "w") as f:
        f.write('[package]\nname = "t"\n')
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(textwrap.dedent(text))
    return root


class ImportCycles(unittest.TestCase):
    def test_two_files_using_each_other_are_a_circle(self):
        root = crate({
            "src/lib.rs": "mod a;\nmod b;\n",
            "src/a.rs": "use crate::b::B;\npub struct A;\n",
            "src/b.rs": "pub struct B;\nfn f() -> crate::a::A { crate::a::A }\n",
        })
        problems = check.check(root)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("src/a.rs", problems[0])
        self.assertIn("src/b.rs", problems[0])

    def test_a_longer_circle_through_super_and_child_paths(self):
        root = crate({
            "src/lib.rs": "mod m;\n",
            "src/m/mod.rs": "mod x;\nmod y;\nuse x::X;\npub struct Top;\n",
            "src/m/x.rs": "use super::y::{Y, other::{self}};\npub struct X;\n",
            "src/m/y.rs": "pub struct Y;\npub mod other {}\nuse super::Top;\n",
        })
        problems = check.check(root)
        self.assertEqual(len(problems), 1, problems)
        for name in ("src/m/mod.rs", "src/m/x.rs", "src/m/y.rs"):
            self.assertIn(name, problems[0])

    def test_one_way_imports_pass(self):
        root = crate({
            "src/main.rs": "mod leaf;\nmod top;\nuse top::run;\nfn main() { run() }\n",
            "src/leaf.rs": "pub const N: u8 = 1;\n",
            "src/top.rs": "use crate::leaf::N;\npub fn run() { let _ = N; }\n",
        })
        self.assertEqual(check.check(root), [])

    def test_reexports_are_followed_to_the_defining_file(self):
        # mod.rs re-exports its children; a child naming a sibling's item through the parent
        # depends on the sibling, not on mod.rs.
        root = crate({
            "src/lib.rs": "pub mod p;\n",
            "src/p/mod.rs": "mod a;\nmod b;\npub use a::A;\npub use b::B;\n",
            "src/p/a.rs": "pub struct A;\n",
            "src/p/b.rs": "use super::A;\npub struct B(A);\n",
        })
        self.assertEqual(check.check(root), [])

    def test_comments_strings_and_inline_test_modules_are_not_imports(self):
        root = crate({
            "src/lib.rs": "mod a;\nmod b;\n",
            "src/a.rs": "use crate::b::B;\npub struct A;\n",
            "src/b.rs": textwrap.dedent('''\
                //! See [`crate::a::A`].
                pub struct B;
                const S: &str = "crate::a::A";
                /* use crate::a::A; */
                #[cfg(test)]
                mod tests {
                    use super::*;
                }
            '''),
        })
        self.assertEqual(check.check(root), [])

    def test_declaring_a_child_is_not_an_import(self):
        root = crate({
            "src/lib.rs": "mod a;\n",
            "src/a.rs": "mod b;\npub struct A;\n",
            "src/a/b.rs": "use super::A;\npub struct B(A);\n",
        })
        self.assertEqual(check.check(root), [])


if __name__ == "__main__":
    unittest.main()
