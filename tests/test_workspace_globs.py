"""Path globs and patches: pure functions, tested by tables and against brute force."""

from __future__ import annotations

import itertools

import pytest

from sessiontree._errors import InvalidInput
from sessiontree.workspace import globs
from sessiontree.workspace import patch as patches

SEGS = ["a", "b", "ab", "ba"]
UNIVERSE = ["."] + ["/".join(p) for depth in (1, 2, 3) for p in itertools.product(SEGS, repeat=depth)]
PATTERNS = ["**", ".", "a", "*", "?", "a*", "*b", "?a", "a/**", "**/b", "a/*/b", "*/**", "a/**/b",
            "**/a*", "b/?", "a/b", "**/**", "ab/*", "*a/**"]


def language(pattern: str) -> set[str]:
    return {p for p in UNIVERSE if globs.match(pattern, p)}


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("src/**", "src", True), ("src/**", "src/a/b.py", True), ("src/**", "srcx/a", False),
    ("**", ".", True), ("*", ".", False), ("*.py", "a.py", True), ("*.py", "d/a.py", False),
    ("**/*.py", "d/e/a.py", True), ("a?c", "abc", True), ("a?c", "ac", False),
    ("[x]", "[x]", True), ("notes.md", "notes.md", True), ("notes.md", "notes.mdx", False),
])
def test_match_table(pattern: str, path: str, expected: bool) -> None:
    assert globs.match(pattern, path) is expected


def test_overlaps_is_exact_and_subsumes_is_sound_on_a_small_universe() -> None:
    for p, q in itertools.product(PATTERNS, repeat=2):
        lp, lq = language(p), language(q)
        if lp & lq:
            assert globs.overlaps(p, q), (p, q)
        if globs.subsumes(p, q):
            assert lq <= lp, (p, q)


@pytest.mark.parametrize(("held", "needed", "expected"), [
    ("**", "src/a.py", True), ("src/**", "src/*.py", True), ("src/*", "src/**", False),
    ("src/?", "src/*", False), ("*.py", "a.py", True), ("a/**/b", "a/x/y/b", True),
    ("a/*", "a/b/c", False), ("docs/**", "src/a", False),
])
def test_subsumes_table(held: str, needed: str, expected: bool) -> None:
    assert globs.subsumes(held, needed) is expected


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "a**", "", "x\x00"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        globs.check_pattern(bad)


BEFORE = "one\ntwo\nthree\nfour\n"
PATCH = """--- a/f.txt
+++ b/f.txt
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
"""


def test_a_patch_applies_and_then_counts_as_already_applied() -> None:
    [fp] = patches.parse(PATCH)
    done = patches.apply_file(fp, BEFORE)
    assert (done.action, done.content) == ("modified", "one\nTWO\nthree\nfour\n")
    assert patches.apply_file(fp, done.content).action == "already_applied"


def test_a_pure_addition_run_again_after_a_crash_is_not_applied_twice() -> None:
    [fp] = patches.parse("--- a/f.txt\n+++ b/f.txt\n@@ -4 +4,2 @@\n four\n+five\n")
    once = patches.apply_file(fp, BEFORE)
    assert once.content == BEFORE + "five\n"
    assert patches.apply_file(fp, once.content, retry=True).action == "already_applied"


def test_a_patch_that_does_not_apply_names_the_file_and_hunk() -> None:
    [fp] = patches.parse(PATCH)
    with pytest.raises(patches.PatchError, match=r"hunk 1 of f\.txt does not apply"):
        patches.apply_file(fp, "something else\n")


def test_creation_deletion_and_wrong_hunk_counts() -> None:
    new, gone = patches.parse("--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,9 @@\n+x\n+y\n"
                              "--- a/o.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n")
    assert patches.apply_file(new, None) == patches.Outcome("created", "x\ny\n")
    assert patches.apply_file(gone, "old\n") == patches.Outcome("deleted", None)
    assert patches.apply_file(gone, None).action == "already_applied"


@pytest.mark.parametrize("bad", ["just text", "@@ -1 +1 @@\n-a\n+b\n",
                                 "--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
                                 "diff --git a/x b/x\nGIT binary patch\n"])
def test_malformed_or_unsupported_patches_are_refused(bad: str) -> None:
    with pytest.raises(patches.PatchError):
        patches.parse(bad)
