"""pybuild.context.dockerignore: Docker's documented examples, moby/patternmatcher's behaviour, and
hypothesis against a small reference matcher written here from the rules."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.context.dockerignore import (
    IgnoreMatcher,
    compile_pattern,
    load,
    match_pattern,
    matcher_of,
    read_patterns,
)
from pybuild.errors import IgnorePatternError

moderate = settings(max_examples=300, deadline=None)


def excluded(text: str, path: str) -> bool:
    return IgnoreMatcher.from_text(text).matches(path)


# ---- reading the file ------------------------------------------------------------------------

def test_read_patterns_cleans_and_marks_exceptions():
    text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n"
    got = [("!" if p.exclusion else "") + p.text for p in read_patterns(text)]
    assert got == ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path"]


@pytest.mark.parametrize("line, text", [
    ("./foo/", "foo"), ("foo/../bar", "bar"), ("//foo//bar/", "foo/bar"), ("  spaced  ", "spaced"),
    ("/", "/"), ("a/./b/.", "a/b"), ("../x", "../x"), ("\ufeffbom", "bom"), ("crlf\r", "crlf"),
    (" # not a comment", "# not a comment"), ("!  ./x", "x"),
])
def test_read_patterns_preprocessing(line, text):
    [pattern] = read_patterns(line)
    assert pattern.text == text


def test_comments_blank_lines_and_crlf():
    assert read_patterns("# c\n\n   \n\t\r\n#x\r\n") == []
    assert [p.text for p in read_patterns("a\r\nb\r\n")] == ["a", "b"]


@pytest.mark.parametrize("text", [
    "!", "! ", "[", "a[", "[^", "[^bc", "[]a]", "[-]", "[x-]", "[-x]", "\\", "a\\", "[a-b-c]",
    "[z-a]", "[Local-Only]/", "ok\n!\n",
])
def test_malformed_patterns(text):
    with pytest.raises(IgnorePatternError) as info:
        read_patterns(text)
    assert text.strip().split("\n")[-1].strip() in str(info.value)


# ---- the examples from Docker's documentation -------------------------------------------------

DOC_EXAMPLE = "# comment\n*/temp*\n*/*/temp*\ntemp?\n"


@pytest.mark.parametrize("path, expected", [
    ("somedir/temporary.txt", True), ("somedir/temp", True), ("somedir/temp/inner", True),
    ("somedir/subdir/temporary.txt", True), ("tempa", True), ("tempb", True),
    ("temporary.txt", False), ("temp", False), ("a/b/c/temp", False), ("# comment", False),
])
def test_docs_temp_example(path, expected):
    assert excluded(DOC_EXAMPLE, path) is expected


@pytest.mark.parametrize("text, path, expected", [
    ("**/*.go", "main.go", True), ("**/*.go", "a/b/c.go", True), ("**/*.go", "a/b/c.goo", False),
    ("*.md\n!README.md", "CHANGES.md", True), ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-public.md", False),
    ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
    ("/foo/bar", "foo/bar", True), ("foo/bar", "foo/bar", True), ("foo/bar", "bar", False),
    ("foo/bar", "x/foo/bar", False), (".", "anything", False),
    ("*\n!src\n!Dockerfile", "src/main.c", False), ("*\n!src\n!Dockerfile", "docs/x", True),
    ("*\n!src\n!Dockerfile", "Dockerfile", False),
])
def test_docs_examples(text, path, expected):
    assert excluded(text, path) is expected


# ---- moby/patternmatcher behaviour -------------------------------------------------------------

# (pattern, path, matches the path or one of its parents)
PATTERN_CASES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**", "dir/file", True),
    ("**/**", "dir/file", True), ("dir/**", "dir/file", True), ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True), ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True), ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False), ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True), ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True), (".*", ".foo", True), (".*", "foo", False),
    ("abc.def", "abcdef", False), ("abc.def", "abc.def", True), ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False), ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False),
    ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True), ("a^b", "a^b", True), ("a^*", "a^x", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\\\", "a\\", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False),
    # Go's filepath.Match table, through the parent-matching matcher
    ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "ab/c", True),
    ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False),
    ("ab[^e-g]", "abc", True), ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False), ("[a-ζ]*", "α", True), ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False), ("a*b", "a/b", False), ("[\\]a]", "]", True), ("[\\-]", "-", True),
    ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False), ("[\\-x]", "a", False),
    ("*x", "xxx", True),
    # the "ends with" shortcut Docker takes for ** followed by plain text
    ("**.pyc", "a/b/c.pyc", True), ("**.pyc", "c.pyc", True), ("**a/b", "xa/b", True),
]


@pytest.mark.parametrize("pattern, path, expected", PATTERN_CASES)
def test_pattern_semantics(pattern, path, expected):
    assert match_pattern(pattern, path) is expected
    assert excluded(pattern, path) is expected


@pytest.mark.parametrize("pattern, path, expected", [
    ("**/dir", "dir/file", False), ("a*", "ab/c", False), ("dir", "dir/x", False),
    ("dir", "dir", True), ("*.txt", "a.txt", True), ("src/*.c", "src/a.c", True),
])
def test_match_pattern_without_parents(pattern, path, expected):
    assert match_pattern(pattern, path, parents=False) is expected


@pytest.mark.parametrize("pattern, kind", [
    ("*", "regex"), ("file*", "regex"), ("**", "suffix"), ("**/**", "regex"),
    ("dir/**", "prefix"), ("**/dir", "suffix"), ("**/dir2/*", "regex"), ("**file", "suffix"),
    ("a[b-d]e", "regex"), (".*", "regex"), ("abc.def", "exact"), ("abc?def", "regex"),
    ("**/foo/bar", "suffix"), ("a(b)c/def", "exact"), ("a.|)$(}+{bc", "exact"),
    ("**\\*", "regex"), ("**]", "regex"), ("a/**", "prefix"), ("**/a/**", "regex"),
])
def test_match_kinds(pattern, kind):
    assert compile_pattern(pattern).kind == kind


@pytest.mark.parametrize("patterns, path, expected", [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False), (["*.go"], ".", False),
    (["dir", "!dir/keep.txt"], "dir/keep.txt", False), (["dir", "!dir/keep.txt"], "dir/x", True),
    (["dir", "!dir/sub"], "dir/sub/deep/file", False), (["a", "!a/b", "a"], "a/b", True),
])
def test_multiple_patterns(patterns, path, expected):
    assert IgnoreMatcher.from_text("\n".join(patterns)).matches(path) is expected
    assert matcher_of(patterns).matches(path) is expected


def test_matcher_of_takes_hash_literally():
    assert matcher_of(["#secret"]).matches("#secret")
    assert not IgnoreMatcher.from_text("#secret").matches("#secret")


# ---- walking: skipping excluded directories ---------------------------------------------------

# BuildKit's walker: an excluded directory is entered only when some `!` pattern's text begins
# with the directory's path and a slash (earlier exceptions count too), whatever it would match.
@pytest.mark.parametrize("text, directory, expected", [
    ("dir", "dir", False), ("dir\n!dir/keep.txt", "dir", True), ("!dir/keep\ndir", "dir", True),
    ("dir\n!dir/sub/x", "dir/sub", True), ("dir\n!dir/sub/x", "dir/other", False),
    ("**\n!**/*.go", "a/b", False), ("node_modules\n!*.md", "node_modules", False),
    ("*\n!src", "docs", False), ("*\n!src", "src", True), ("*\n!*/keep", "docs", False),
    ("*\n!a*/**", "abc", False), ("*\n!a*/**", "bcd", False), ("*\n!**.keep", "x", False),
    ("x\n!x[0-9]/y", "x", False), ("x\n!x/[0-9]/y", "x", True), ("x\n!x/[0-9]/y", "x/a", False),
    ("*\n!dir/**", "dir", True), ("*\n!di**", "dir", True), ("*\n!dir/sub", "dirx", False),
    ("nothing", "dir", True), ("cache\n!/cache/keep", "cache", True),
])
def test_may_contain_included(text, directory, expected):
    assert IgnoreMatcher.from_text(text).may_contain_included(directory) is expected


def test_has_exceptions():
    assert not IgnoreMatcher.from_text("a\nb").has_exceptions
    assert IgnoreMatcher.from_text("a\n!b").has_exceptions
    assert not IgnoreMatcher().has_exceptions


# ---- loading from a context -------------------------------------------------------------------

def test_load(tmp_path):
    assert load(tmp_path) == IgnoreMatcher()
    assert not load(tmp_path).matches("anything")
    (tmp_path / ".dockerignore").write_text("*.log\n!keep.log\n")
    matcher = load(tmp_path)
    assert matcher.matches("a.log") and not matcher.matches("keep.log")
    dockerfile = tmp_path / "build.Dockerfile"
    (tmp_path / "build.Dockerfile.dockerignore").write_text("secret\n")
    specific = load(tmp_path, dockerfile)
    assert specific.matches("secret") and not specific.matches("a.log")
    assert load(tmp_path, tmp_path / "Dockerfile") == matcher


def test_load_non_utf8_and_errors(tmp_path):
    (tmp_path / ".dockerignore").write_bytes(b"caf\xe9\n")
    assert load(tmp_path).matches("caf\udce9")
    (tmp_path / ".dockerignore").write_text("good\n[bad\n")
    with pytest.raises(IgnorePatternError, match=r"\[bad"):
        load(tmp_path)


# ---- hypothesis: agreement with a reference matcher --------------------------------------------

def ref_clean(body: str) -> str | None:
    """Only what generated patterns need: no '.' or '..' elements appear. None: matches nothing."""
    parts = [part for part in body.split("/") if part]
    return "/".join(parts) if parts else None


@cache
def ref_glob(pattern: str, path: str) -> bool:
    """Backtracking: * and ? stay inside a segment; ** spans directories."""
    if not pattern:
        return not path
    if pattern.startswith("**"):
        rest = pattern[2:].removeprefix("/")
        if not rest:
            return True
        return ref_glob(rest, path) or any(
            path[i] == "/" and ref_glob(rest, path[i + 1:]) for i in range(len(path)))
    head, tail = pattern[0], pattern[1:]
    if head == "*":
        return any(ref_glob(tail, path[i:]) for i in range(len(path) + 1) if "/" not in path[:i])
    if not path or path[0] == "/" and head == "?":
        return False
    return (head == "?" or head == path[0]) and ref_glob(tail, path[1:])


def ref_match(pattern: str, path: str) -> bool:
    rest = pattern[2:]
    if pattern.startswith("**") and "*" not in rest and "?" not in rest:
        return path.endswith(rest) or (rest.startswith("/") and path == rest[1:])
    return ref_glob(pattern, path)


def ref_excluded(lines: list[str], path: str) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    verdict = False
    for line in lines:
        exclusion = line.startswith("!")
        pattern = ref_clean(line[1:] if exclusion else line)
        if pattern is not None and any(ref_match(pattern, c) for c in candidates):
            verdict = not exclusion
    return verdict


TOKENS = st.sampled_from(["a", "b", "*", "?", "**", "/", "!"])
BODY = st.lists(TOKENS, min_size=1, max_size=6).map("".join).filter(lambda s: s != "!")
LINE = st.tuples(st.booleans(), BODY).map(lambda t: ("!" if t[0] else "") + t[1])
LINES = st.lists(LINE, min_size=1, max_size=5)
SEGMENT = st.text(alphabet="ab!", min_size=1, max_size=3)
PATH = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)


@moderate
@given(LINES, PATH)
def test_agrees_with_reference(lines, path):
    assert IgnoreMatcher.from_text("\n".join(lines)).matches(path) == ref_excluded(lines, path)


@moderate
@given(BODY.filter(lambda s: not s.startswith("!")), PATH)
def test_single_pattern_agrees_with_reference(body, path):
    pattern = ref_clean(body)
    expected = pattern is not None and ref_match(pattern, path)
    assert match_pattern(body, path, parents=False) == expected


def ref_walk(lines: list[str], files: list[str]) -> list[str]:
    """What BuildKit's context walker sends from a tree holding ``files``: an excluded
    directory is entered only when an exception's cleaned text starts with its path + "/"."""
    tree: dict[str, set[str]] = {"": set()}
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            tree.setdefault("/".join(parts[:i - 1]), set()).add("/".join(parts[:i]))
            if i < len(parts):
                tree.setdefault("/".join(parts[:i]), set())
    exceptions = [ref_clean(line[1:]) for line in lines if line.startswith("!")]
    sent: list[str] = []

    def visit(directory: str) -> None:
        for path in sorted(tree[directory]):
            is_dir = path in tree
            if ref_excluded(lines, path):
                if not is_dir or not any(e is not None and (e + "/").startswith(path + "/")
                                         for e in exceptions):
                    continue
            sent.append(path)
            if is_dir:
                visit(path)

    visit("")
    return sent


FILES = st.lists(PATH, min_size=1, max_size=6).filter(
    lambda paths: not any(p != q and q.startswith(p + "/") for p in paths for q in paths))


@moderate
@given(LINES, FILES)
def test_walk_agrees_with_buildkits_walker(lines, files):
    import tempfile
    from pathlib import Path

    from pybuild.context.walk import BuildContext

    with tempfile.TemporaryDirectory() as root:
        for path in files:
            (Path(root) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(root) / path).write_text("x")
        (Path(root) / ".dockerignore").write_text("\n".join(lines))
        walked = [rel for rel, _ in BuildContext(root).walk() if rel != ".dockerignore"]
    assert sorted(walked) == sorted(p for p in ref_walk(lines, files) if p != ".dockerignore")
