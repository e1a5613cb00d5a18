"""``.dockerignore`` patterns with Docker's semantics (moby/patternmatcher and its file reader).

A pattern is cleaned like Go's ``filepath.Clean`` (a leading ``/`` means nothing), then matched
against a context-relative slash path *and each of its parent directories*, so ``dir`` excludes
everything below ``dir``. Later patterns win; a leading ``!`` makes a pattern an exception that
re-includes what it matches. Within a pattern ``*`` and ``?`` do not cross ``/``, ``[a-z]`` and
``[^a]`` are character classes, ``\\`` escapes, and ``**`` matches any number of directories.

Docker's matcher takes shortcuts for some pattern shapes that change their meaning, and they are
kept here: a pattern made of ``**`` and then only plain text is tested with "ends with", so
``**.pyc`` excludes every ``.pyc`` file, at any depth.

Excluded directories are skipped whole, as BuildKit's context walker (and docker's) skips
them: the walker descends into an excluded directory only when the text of some ``!``
exception begins with the directory's path and a slash. ``cache`` with ``!cache/keep.txt``
reopens ``cache/``; ``cache`` with ``!**/keep.txt`` or ``!*/keep*`` does not, so nothing below
``cache/`` is sent even though the exception would match ``cache/keep.txt``, and a COPY that
names ``cache`` fails as a path not in the context (docker/cli#2919 shows users meeting this).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from pybuild.errors import ContextError, IgnorePatternError
from pybuild.spaces import GO_SPACES

__all__ = ["IgnoreMatcher", "Pattern", "compile_pattern", "load", "match_pattern", "matcher_of",
           "read_patterns"]

EXACT, PREFIX, SUFFIX, REGEX = "exact", "prefix", "suffix", "regex"
_CHAR, _STAR, _DSTAR, _DSTAR_END = range(4)
# A path that needs cleaning: empty, ., .. or empty elements, or a leading or trailing slash.
_UNCLEAN = re.compile(r"\A\Z|(?:\A|/)\.{1,2}(?:/|\Z)|//|\A/|/\Z")


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern. ``kind`` is how Docker tests it: equality, prefix, suffix or regex."""

    text: str
    exclusion: bool = False
    kind: str = EXACT
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    # the same regex, but also matching anything below a match: one call instead of one per parent
    tree: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def match(self, path: str) -> bool:
        """Whether this pattern matches ``path`` itself (a cleaned slash path)."""
        if self.kind == EXACT:
            return path == self.text
        if self.kind == PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind == SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None

    def match_or_parent(self, path: str) -> bool:
        """Whether this pattern matches ``path`` or one of its parent directories."""
        if self.kind == EXACT:
            return path == self.text or path.startswith(self.text + "/")
        if self.kind == PREFIX:  # a parent with the prefix means the path has it too
            return path.startswith(self.text[:-2])
        if self.kind == SUFFIX:
            suffix = self.text[2:]
            return (path.endswith(suffix) or suffix + "/" in path
                    or (suffix[:1] == "/" and (path + "/").startswith(suffix[1:] + "/")))
        assert self.tree is not None
        return self.tree.match(path) is not None


@dataclass(frozen=True)
class IgnoreMatcher:
    """The patterns of one .dockerignore file, in order."""

    patterns: tuple[Pattern, ...] = ()

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, with ``/``) is excluded from the context."""
        path = _normalise(path)
        if self._any_exclusion.match(path) is None:
            return False
        index = self._last_match(path)
        return index is not None and not self.patterns[index].exclusion

    @cached_property
    def _any_exclusion(self) -> re.Pattern[str]:
        """Matches what any non-``!`` pattern matches. Most paths match none, and this says so
        in one regex call instead of one call per pattern."""
        sources = [_tree_source(p) for p in self.patterns if not p.exclusion]
        return re.compile("|".join(f"(?:{source})" for source in sources) or "(?!)")

    def _last_match(self, path: str) -> int | None:
        """Index of the last pattern matching ``path`` or a parent: that pattern decides."""
        if path in ("", "."):
            return None  # Docker refuses to exclude the context root itself
        for index in range(len(self.patterns) - 1, -1, -1):
            if self.patterns[index].match_or_parent(path):
                return index
        return None

    def may_contain_included(self, dir_path: str) -> bool:
        """Whether the walker descends into ``dir_path``: False when the directory is
        excluded and no ``!`` pattern's text begins with its path (BuildKit's rule, see the
        module docstring)."""
        path = _normalise(dir_path)
        index = self._last_match(path)
        if index is None or self.patterns[index].exclusion:
            return True
        prefix = path + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        return cls(tuple(read_patterns(text)))


def _tree_source(pattern: Pattern) -> str:
    """Regex source for what ``pattern.match_or_parent`` accepts."""
    below = r"(?s:/.*)?\Z"
    if pattern.kind == EXACT:
        return re.escape(pattern.text) + below
    if pattern.kind == PREFIX:
        return re.escape(pattern.text[:-2])
    if pattern.kind == SUFFIX:
        suffix = pattern.text[2:]
        source = r"(?s:.*)" + re.escape(suffix) + below
        if suffix.startswith("/"):
            source += "|" + re.escape(suffix[1:]) + below
        return source
    assert pattern.tree is not None
    return pattern.tree.pattern


def read_patterns(text: str) -> list[Pattern]:
    """Parse .dockerignore text: ``#`` comment lines (in column one), blank lines, ``!``."""
    patterns = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if number == 1:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = _read_line(line)
        if pattern is not None:
            patterns.append(pattern)
    return patterns


def _read_line(line: str) -> Pattern | None:
    body = line.strip(GO_SPACES)
    if not body:
        return None
    exclusion = body.startswith("!")
    if exclusion:
        body = body[1:].strip(GO_SPACES)
        if not body:
            raise IgnorePatternError(f'invalid .dockerignore pattern "{line.strip()}": '
                                     'illegal exclusion pattern: "!"')
    try:
        return _build(_relative(body), exclusion)
    except (ValueError, re.error) as err:
        raise IgnorePatternError(
            f'invalid .dockerignore pattern "{line.strip(GO_SPACES)}": {err}') from None


def load(context_dir: str | os.PathLike[str],
         dockerfile: str | os.PathLike[str] | None = None) -> IgnoreMatcher:
    """The context's ignore rules: ``<dockerfile>.dockerignore`` if it exists (as BuildKit
    prefers it), else ``<context>/.dockerignore``, else a matcher that ignores nothing."""
    candidates = [Path(context_dir) / ".dockerignore"]
    if dockerfile is not None:
        candidates.insert(0, Path(os.fspath(dockerfile) + ".dockerignore"))
    for candidate in candidates:
        try:
            data = candidate.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise ContextError(f"cannot read {candidate}: {err.strerror}") from err
        # surrogateescape: non-UTF-8 names must still match os.fsdecode()d paths
        return IgnoreMatcher.from_text(data.decode("utf-8", "surrogateescape"))
    return IgnoreMatcher()


def match_pattern(pattern: str, path: str, *, parents: bool = True) -> bool:
    """Match one Docker pattern (no ``!``) against a path, as ``COPY --exclude`` does.

    With ``parents`` the pattern also matches everything below a directory it matches. Without,
    it is Go's ``filepath.Match`` (what COPY wildcard sources use) except that ``**`` spans
    directories there and ``filepath.Match`` reads it as ``*``.
    """
    compiled = _cached_pattern(pattern)
    path = _normalise(path)
    return compiled.match_or_parent(path) if parents else compiled.match(path)


def matcher_of(patterns: Iterable[str]) -> IgnoreMatcher:
    """A matcher from patterns such as the values of ``COPY --exclude`` flags: each is read
    like a .dockerignore line (``!`` works) except that ``#`` starts no comment."""
    compiled = (_read_line(pattern) for pattern in patterns)
    return IgnoreMatcher(tuple(p for p in compiled if p is not None))


@lru_cache(maxsize=512)
def _cached_pattern(pattern: str) -> Pattern:
    text = pattern.strip(GO_SPACES)
    if not text:
        raise IgnorePatternError("empty pattern")
    return compile_pattern(_relative(text))


def compile_pattern(text: str, *, exclusion: bool = False) -> Pattern:
    """Compile an already cleaned pattern; raise IgnorePatternError if it is malformed."""
    try:
        return _build(text, exclusion)
    except (ValueError, re.error) as err:
        raise IgnorePatternError(f'invalid pattern "{text}": {err}') from None


def _build(text: str, exclusion: bool) -> Pattern:
    kind, tokens = _tokens(text)
    if kind != REGEX:
        return Pattern(text, exclusion, kind)
    body = "".join(fragment for _, fragment in tokens)
    tree = re.compile(body + r"(?s:/.*)?\Z")
    return Pattern(text, exclusion, kind, re.compile(body + r"\Z"), tree)


def _tokens(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Split a pattern into regex tokens and decide Docker's match kind, as its compiler does:
    plain text is exact, ``x**`` a prefix, ``**x`` a suffix (if x stays plain), else regex."""
    kind, tokens, i, n = EXACT, [], 0, len(text)
    while i < n:
        start, ch = i, text[i]
        i += 1
        if ch == "*" and text.startswith("*", i):
            i += 2 if text.startswith("/", i + 1) else 1
            if i < n:
                tokens.append((_DSTAR, "(?:.*/)?"))
                kind = REGEX
            else:
                tokens.append((_DSTAR_END, ".*"))
                kind = PREFIX if kind == EXACT else REGEX
            if start == 0:
                kind = SUFFIX
            continue
        if ch == "*":
            tokens.append((_STAR, "[^/]*"))
        elif ch == "?":
            tokens.append((_CHAR, "[^/]"))
        elif ch == "\\":
            if i >= n:
                raise ValueError("trailing backslash")
            tokens.append((_CHAR, re.escape(text[i])))
            i += 1
        elif ch == "[":
            fragment, i = _char_class(text, i)
            tokens.append((_CHAR, fragment))
        elif ch == "]":
            tokens.append((_CHAR, "\\]"))
        else:
            tokens.append((_CHAR, re.escape(ch)))
            continue
        kind = REGEX
    return kind, tokens


def _char_class(text: str, i: int) -> tuple[str, int]:
    """Parse ``[...]`` (``i`` just after the ``[``) with Go filepath.Match's syntax rules."""
    negated = text.startswith("^", i)
    i += negated
    parts = ["[^" if negated else "["]
    while True:
        if i < len(text) and text[i] == "]" and len(parts) > 1:
            parts.append("]")
            return "".join(parts), i + 1
        lo, i = _class_char(text, i)
        hi = lo
        if text.startswith("-", i):
            hi, i = _class_char(text, i + 1)
        if hi < lo:
            raise ValueError(f"bad character range {lo}-{hi}")
        parts.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")


def _class_char(text: str, i: int) -> tuple[str, int]:
    if i >= len(text) or text[i] in "-]":
        raise ValueError("bad character class")
    if text[i] == "\\":
        i += 1
        if i >= len(text):
            raise ValueError("bad character class")
    if i + 1 >= len(text):
        raise ValueError("unterminated character class")
    return text[i], i + 1


@lru_cache(maxsize=256)
def _clean(path: str) -> str:
    """Go's path.Clean: no empty or ``.`` elements, ``..`` resolved lexically."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not rooted:
            parts.append("..")
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _relative(pattern: str) -> str:
    """Clean a pattern; the context is its root, so a leading ``/`` means nothing."""
    pattern = _clean(pattern)
    return pattern[1:] if len(pattern) > 1 and pattern.startswith("/") else pattern


def _normalise(path: str) -> str:
    if _UNCLEAN.search(path) is None:
        return path
    return _clean(path).lstrip("/")
