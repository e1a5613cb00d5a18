"""The build context: walking with .dockerignore, COPY source resolution, content digests."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from pybuild.cache.filehashes import FileHashMemo
from pybuild.context import walk as context_mod
from pybuild.context.glob import glob_regex
from pybuild.context.walk import BuildContext
from pybuild.errors import BuildError, ContextError


def make_tree(root: Path, files: dict[str, str], ignore: str | None = None) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if ignore is not None:
        (root / ".dockerignore").write_text(ignore)
    # Files younger than the memo's racy window are hashed but not remembered.
    time.sleep(context_mod._RACY_NS / 1e9 + 0.02)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "ctx", {
        "app.conf": "listen=8080\n", "notes.tmp": "x", "scratch/x": "x",
        "src/main.c": "int main;", "src/lib/util.c": "util", "src/lib/util.h": "h",
        "docs/a.md": "a", "docs/keep.md": "keep", "docs/deep/b.md": "b",
    }, ignore="*.tmp\nscratch/\ndocs\n!docs/keep.md\n")


def rels(ctx: BuildContext, top: str = "") -> list[str]:
    return [rel for rel, _ in ctx.walk(top)]


# ---- construction and walking

def test_missing_or_non_dir_context_is_one_line_context_error(tmp_path: Path):
    with pytest.raises(ContextError) as err:
        BuildContext(tmp_path / "nope")
    assert "\n" not in str(err.value) and "not found" in str(err.value)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ContextError, match="not a directory"):
        BuildContext(tmp_path / "f")


def test_walk_applies_dockerignore_and_reincludes_under_excluded_dir(tree: Path):
    got = rels(BuildContext(tree))
    assert got == [".dockerignore", "app.conf", "docs", "docs/keep.md", "src", "src/lib",
                   "src/lib/util.c", "src/lib/util.h", "src/main.c"]


def test_walk_without_dockerignore_sees_everything(tree: Path):
    got = rels(BuildContext(tree, dockerignore=False))
    assert "scratch/x" in got and "notes.tmp" in got and "docs/deep/b.md" in got


def test_ignored_subtree_is_never_listed(tree: Path, monkeypatch: pytest.MonkeyPatch):
    listed: list[str] = []
    real = os.scandir

    def spy(path):
        listed.append(os.path.relpath(path, tree))
        return real(path)

    monkeypatch.setattr(context_mod.os, "scandir", spy)
    rels(BuildContext(tree))
    assert "scratch" not in listed and "src/lib" in listed


# ---- COPY sources

def dests(entries) -> list[tuple[str, str, str]]:
    return [(e.relpath, e.dest, e.kind) for e in entries]


def test_file_and_directory_sources(tree: Path):
    ctx = BuildContext(tree)
    assert dests(ctx.resolve_sources(["app.conf"])) == [("app.conf", "app.conf", "file")]
    assert dests(ctx.resolve_sources(["./src/lib/"])) == [
        ("src/lib", "", "dir"), ("src/lib/util.c", "util.c", "file"),
        ("src/lib/util.h", "util.h", "file")]
    whole = ctx.resolve_sources(["."])
    assert whole[0].relpath == "" and {e.dest for e in whole} >= {"src/main.c", "docs/keep.md"}


def test_missing_or_ignored_source_names_it_in_one_line(tree: Path):
    ctx = BuildContext(tree)
    for src in ("nope.txt", "notes.tmp", "scratch/x", "docs/a.md"):
        with pytest.raises(BuildError) as err:
            ctx.resolve_sources([src])
        assert str(err.value) == (
            "COPY failed: file not found in build context or excluded by .dockerignore: "
            f"stat {src}: file does not exist")


def test_wildcards_follow_go_filepath_match(tree: Path):
    ctx = BuildContext(tree)
    got = ctx.resolve_sources(["src/lib/util.[ch]", "*.conf", "src/?ain.c"])
    assert [e.dest for e in got] == ["util.c", "util.h", "app.conf", "main.c"]
    assert ctx.resolve_sources(["*.nothing"]) == []  # as BuildKit: empty wildcards are fine
    assert [e.dest for e in ctx.resolve_sources(["*.tmp", "docs/*.md"])] == ["keep.md"]


def test_each_match_is_numbered_and_a_directory_shares_its_number(tree: Path):
    got = BuildContext(tree).resolve_sources(["src/lib/util.[ch]", "src/lib", "app.conf"])
    assert [(e.dest, e.match) for e in got] == [
        ("util.c", 0), ("util.h", 1), ("", 2), ("util.c", 2), ("util.h", 2), ("app.conf", 3)]


def test_double_star_spans_directories(tree: Path):
    got = BuildContext(tree).resolve_sources(["**/*.c"])
    assert [e.relpath for e in got] == ["src/lib/util.c", "src/main.c"]


def test_parents_keeps_paths_and_pivot(tree: Path):
    ctx = BuildContext(tree)
    got = ctx.resolve_sources(["src/*/util.c", "app.conf"], parents=True)
    assert [e.dest for e in got] == ["src/lib/util.c", "app.conf"]
    pivot = ctx.resolve_sources(["src/./lib/util.h"], parents=True)
    assert [e.dest for e in pivot] == ["lib/util.h"]


def test_exclude_filters_by_destination_path(tree: Path):
    got = BuildContext(tree).resolve_sources(["src"], excludes=["**/*.h", "main.c"])
    assert [e.dest for e in got] == ["", "lib", "lib/util.c"]


def test_symlinks_top_followed_inner_kept_and_scoped_to_context(tmp_path: Path):
    root = make_tree(tmp_path / "c", {"real/data.txt": "payload", "dir/f": "f"})
    os.symlink("../real/data.txt", root / "dir" / "link")
    os.symlink("real/data.txt", root / "top")
    os.symlink("/real/data.txt", root / "abs")  # absolute: resolved inside the context
    os.symlink("/etc/hostname", root / "escape")
    ctx = BuildContext(root)
    [top] = ctx.resolve_sources(["top"])
    assert (top.relpath, top.dest, top.kind, top.size) == ("real/data.txt", "top", "file", 7)
    [absl] = ctx.resolve_sources(["abs"])
    assert absl.relpath == "real/data.txt"
    [nofollow] = ctx.resolve_sources(["top"], follow_top_symlink=False)
    assert nofollow.kind == "symlink" and nofollow.link_target == "real/data.txt"
    inner = {e.dest: e for e in ctx.resolve_sources(["dir"])}
    assert inner["link"].kind == "symlink" and inner["link"].link_target == "../real/data.txt"
    with pytest.raises(BuildError, match="stat escape"):
        ctx.resolve_sources(["escape"])


def test_bad_pattern_is_an_error():
    with pytest.raises(BuildError, match="syntax error in pattern"):
        glob_regex("a[")
    assert glob_regex(r"a\*").match("a*") and not glob_regex(r"a\*").match("ab")
    assert glob_regex("[^a-c]x").match("dx") and not glob_regex("[^a-c]x").match("bx")


# ---- digests and the memo

def digest(root: Path, memo: FileHashMemo | None = None, **kw) -> str:
    ctx = BuildContext(root, memo=memo)
    return ctx.content_digest(ctx.resolve_sources(["."]), **kw)


def test_digest_ignores_mtime_but_not_content_mode_or_owner(tree: Path):
    base = digest(tree)
    os.utime(tree / "app.conf", ns=(1, 1))
    os.utime(tree / "src", ns=(5, 5))
    assert digest(tree) == base
    os.chmod(tree / "app.conf", 0o600)
    assert digest(tree) != base
    os.chmod(tree / "app.conf", 0o644)
    assert digest(tree) == base
    os.chown(tree / "src/main.c", 1234, 1234)
    assert digest(tree) != base
    assert digest(tree, chown=(0, 0)) == digest(tree, chown=(0, 0))
    os.chown(tree / "src/main.c", 0, 0)
    (tree / "src/main.c").write_text("int main;!")
    assert digest(tree) != base


def test_digest_changes_when_a_file_appears_or_a_link_target_changes(tree: Path):
    base = digest(tree)
    os.symlink("a", tree / "src" / "ln")
    with_link = digest(tree)
    assert with_link != base
    os.unlink(tree / "src" / "ln")
    os.symlink("b", tree / "src" / "ln")
    assert digest(tree) not in (base, with_link)


def test_memo_is_reused_across_processes_without_reading(tree: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = BuildContext(tree, memo=FileHashMemo.for_context(cache, str(tree)))
    d1 = first.content_digest(first.resolve_sources(["."]))
    assert first.files_hashed == 6
    again = BuildContext(tree, memo=FileHashMemo.for_context(cache, str(tree)))
    assert again.content_digest(again.resolve_sources(["."])) == d1
    assert again.files_hashed == 0
    # Proof that nothing was read: a planted (wrong) hash with the right stat is used as is.
    memo_path = FileHashMemo.for_context(cache, str(tree)).path
    doc = json.loads(memo_path.read_text())
    doc["entries"]["app.conf"][-1] = "0" * 64
    memo_path.write_text(json.dumps(doc))
    assert digest(tree, FileHashMemo(memo_path)) != d1


def test_touch_rehashes_one_file_and_keeps_the_digest(tree: Path, tmp_path: Path):
    memo_path = tmp_path / "memo.json"
    d1 = digest(tree, FileHashMemo(memo_path))
    time.sleep(0.01)
    (tree / "app.conf").touch()
    time.sleep(context_mod._RACY_NS / 1e9 + 0.02)
    ctx = BuildContext(tree, memo=FileHashMemo(memo_path))
    assert ctx.content_digest(ctx.resolve_sources(["."])) == d1
    assert ctx.files_hashed == 1


def test_fresh_files_are_hashed_but_not_remembered(tmp_path: Path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "new").write_text("x")  # no sleep: inside the racy window
    memo = FileHashMemo(tmp_path / "m.json")
    ctx = BuildContext(root, memo=memo)
    ctx.content_digest(ctx.resolve_sources(["."]))
    assert memo.get("new", ctx.resolve_sources(["new"])[0].stat_key) is None


def test_corrupt_memo_is_empty(tmp_path: Path, tree: Path):
    path = tmp_path / "memo.json"
    path.write_text("{not json")
    assert digest(tree, FileHashMemo(path)) == digest(tree)
    assert json.loads(path.read_text())["version"] == 1


names = hst.text("abcxyz", min_size=1, max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=hst.dictionaries(hst.lists(names, min_size=1, max_size=3).map("/".join),
                              hst.binary(max_size=64), min_size=1, max_size=8),
       times=hst.lists(hst.integers(0, 2**40), min_size=1, max_size=8), pick=hst.integers(0))
def test_digest_invariant_to_mtime_and_sensitive_to_content(files, times, pick):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        written = []
        for rel, data in sorted(files.items()):
            path = root / rel
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                written.append(path)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                continue  # a name used both as a file and a directory
        base = digest(root)
        for i, path in enumerate(written):
            os.utime(path, ns=(times[i % len(times)], times[i % len(times)]))
        assert digest(root) == base
        victim = written[pick % len(written)]
        victim.write_bytes(victim.read_bytes() + b"!")
        assert digest(root) != base


def test_several_sources_need_a_directory_dest():
    context_mod.check_copy_dest(["a", "b"], "/app/")
    context_mod.check_copy_dest(["*.txt"], "/app")
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        context_mod.check_copy_dest(["a", "b"], "/app", "ADD")


def test_memo_forgets_deleted_files_when_it_saves(tree: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    digest(tree, FileHashMemo.for_context(cache, str(tree)))
    (tree / "src/main.c").unlink()
    (tree / "new.txt").write_text("n")
    time.sleep(context_mod._RACY_NS / 1e9 + 0.02)
    ctx = BuildContext(tree, memo=FileHashMemo.for_context(cache, str(tree)))
    ctx.content_digest(ctx.resolve_sources(["app.conf", "new.txt"]))  # a partial COPY
    entries = json.loads(FileHashMemo.for_context(cache, str(tree)).path.read_text())["entries"]
    assert "src/main.c" not in entries and {"new.txt", "src/lib/util.c"} <= set(entries)


def test_excluded_dir_with_a_reincluded_file_can_be_copied(tree: Path):
    ctx = BuildContext(tree)
    assert dests(ctx.resolve_sources(["docs"])) == [("docs", "", "dir"),
                                                    ("docs/keep.md", "keep.md", "file")]
    assert [e.relpath for e in ctx.resolve_sources(["do*"])] == ["docs", "docs/keep.md"]


def test_a_fifo_is_listed_but_never_opened(tmp_path: Path):
    root = make_tree(tmp_path / "c", {"a": "a"})
    os.mkfifo(root / "pipe")
    ctx = BuildContext(root)
    entries = ctx.resolve_sources(["."])
    assert {e.dest: e.kind for e in entries} == {"": "dir", "a": "file", "pipe": "special"}
    ctx.content_digest(entries)  # would block forever if the fifo were read


def go_match(pattern: str, name: str) -> bool:
    """A direct reading of Go's filepath.Match for '*', '?' and literals (the oracle)."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(go_match(rest, name[i:]) for i in range(len(name) + 1) if "/" not in name[:i])
    if head == "?":
        return bool(name) and name[0] != "/" and go_match(rest, name[1:])
    return bool(name) and name[0] == head and go_match(rest, name[1:])


@given(pattern=hst.text("ab/*?", max_size=7), name=hst.text("ab/", max_size=7))
def test_glob_regex_agrees_with_go_match(pattern, name):
    assert bool(glob_regex(pattern).match(name)) == go_match(pattern, name)
