"""The answer to a build whose inputs are all unchanged: the image the last such build made.

Two records under ``ROOT/cache``:

``results/<key>.json``
    Written by the library's ``build()`` after a success (:func:`remember`): the image, the
    digest of ``refs.json`` after tagging, and a snapshot of every entry of the context (type,
    mode, owner, size; for files the stat and, when the build hashed it, the content hash).
    The key covers the Dockerfile's bytes and every option that can change the image
    (:func:`request_fields`). :func:`lookup` gives the image when every context entry is
    unchanged; a file whose stat moved but whose content hash is equal (a ``touch``) counts as
    unchanged, as it does for the step cache. The library asks it before doing any work, so
    ``Client.images.build`` and ``pybuild build`` share the one answer.

``cli/<key>.json``
    A command-line memo, written by ``pybuild build`` after a success
    (:func:`remember_command_line`): the literal arguments, the working directory, the values
    of the environment variables the command read, the request parameters click parsed and
    the output choices (``-q``, ``--iidfile``, ``--progress``). The console entry
    (:mod:`pybuild.entry`) finds it by hashing the arguments and the directory, before click
    is even imported (:func:`replay`), checks those variables, recomputes the request's
    fields from the stored parameters (so an edited Dockerfile or context still misses) and
    asks :func:`lookup`. It never reads a build option: click stays the only parser, and a
    command line that was never recorded (``--no-cache``, ``--secret``, ``--output``, a build
    that failed) simply has no memo.

Only the standard library and two pybuild modules that import nothing else are loaded here:
this runs on every ``pybuild build``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys

from pybuild.store.fsutil import atomic_write
from pybuild.store.paths import DEFAULT_ROOT, ROOT_ENV

SCHEMA = 1
_RACY_NS = 50_000_000  # an entry changed this close to the snapshot could change unseen


def snapshot(root: str) -> dict[str, list]:
    """Every entry below ``root``: [kind, mode, uid, gid, size, mtime_ns, ino, ctime_ns, link]."""
    out: dict[str, list] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel)) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                kind = stat.S_IFMT(st.st_mode)
                link = os.readlink(entry.path) if stat.S_ISLNK(st.st_mode) else None
                size = st.st_size if stat.S_ISREG(st.st_mode) else 0
                out[path] = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size,
                             st.st_mtime_ns, st.st_ino, st.st_ctime_ns, link]
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)
    return out


def request_key(fields: dict) -> str:
    doc = json.dumps({"schema": SCHEMA, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def request_fields(context: str, dockerfile: str | None, tags, build_args: dict, target,
                   labels: dict, platform, network: str, source_date_epoch) -> dict | None:
    """The canonical description of a build request, or None when it cannot be read. The
    parameters are the JSON-ready ones ``pybuild.build.unchanged.request`` gives, as the
    command-line memo stores them."""
    ctx = os.path.realpath(context)
    path = os.path.realpath(dockerfile) if dockerfile else os.path.join(ctx, "Dockerfile")
    try:
        with open(path, "rb") as f:
            text = f.read()
        ignore = path + ".dockerignore"
        extra = open(ignore, "rb").read() if dockerfile and os.path.isfile(ignore) else b""
    except OSError:
        return None
    return {"context": ctx, "dockerfile": path,
            "dockerfile_sha": hashlib.sha256(text).hexdigest(),
            "named_ignore_sha": hashlib.sha256(extra).hexdigest(),
            "tags": sorted(set(tags)),
            "build_args": sorted((k, v) for k, v in build_args.items() if v is not None),
            "target": target, "labels": sorted(labels.items()), "platform": platform,
            "network": network, "sde": source_date_epoch}


def _record_path(root: str, key: str) -> str:
    return os.path.join(root, "cache", "results", f"{key}.json")


def _refs_digest(root: str) -> str:
    try:
        with open(os.path.join(root, "refs.json"), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return ""


def remember(root: str, fields: dict, image_id: str, before: dict[str, list],
             hashes: dict[str, str], started_ns: int) -> None:
    """Record a finished build, if the context stood still while it ran."""
    context = fields["context"]
    after = snapshot(context)
    if after != before:
        return
    newest = max((max(e[5], e[7]) for e in after.values()), default=0)
    if newest > started_ns - _RACY_NS:
        return
    record = {"image": image_id, "refs": _refs_digest(root), "entries": after,
              "hashes": {p: h for p, h in hashes.items() if p in after}}
    _write(_record_path(root, request_key(fields)), record)


def _write(path: str, record: dict) -> None:
    # atomic: a replay running beside this write reads the old record or the new one
    atomic_write(path, json.dumps(record, separators=(",", ":")).encode())


def _same(context: str, rel: str, old: list, new: list, hashes: dict[str, str]) -> bool:
    if old == new:
        return True
    if old[:5] != new[:5] or old[8] != new[8] or old[0] != stat.S_IFREG:
        return False  # type, mode, owner, size or link target moved: not a touch
    digest = hashes.get(rel)
    if digest is None:
        return False
    with open(os.path.join(context, rel), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest() == digest


def lookup(root: str, fields: dict) -> str | None:
    """The image an unchanged build gives, or None."""
    path = _record_path(root, request_key(fields))
    try:
        with open(path) as f:
            record = json.load(f)
        image = record["image"]
        if record["refs"] != _refs_digest(root):
            return None
        if not os.path.isfile(os.path.join(root, "images", image.split(":")[-1] + ".json")):
            return None
        now = snapshot(fields["context"])
        old = record["entries"]
        if now.keys() != old.keys():
            return None
        moved = [rel for rel in now if now[rel] != old[rel]]
        if not all(_same(fields["context"], r, old[r], now[r], record["hashes"]) for r in moved):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if moved:  # remember the new stats, so the next replay need not hash again
        record["entries"] = now
        try:
            _write(path, record)
        except OSError:
            pass
    return image


# -- the command-line memo: argv -> what click made of it, so the entry need not parse it

def _memo_path(root: str, argv: list[str], cwd: str) -> str:
    doc = json.dumps([SCHEMA, argv, cwd], separators=(",", ":"))
    return os.path.join(root, "cache", "cli", hashlib.sha256(doc.encode()).hexdigest() + ".json")


def remember_command_line(root: str, argv: list[str], env_names, request: dict,
                          output: dict) -> None:
    """After ``pybuild [--root R] build ...`` succeeded: ``argv`` (the literal arguments),
    run in this directory with these values of ``env_names``, asked for ``request`` (the
    keyword arguments of :func:`request_fields`) and printed as ``output`` says (``quiet``,
    ``iidfile``, ``progress``)."""
    cwd = os.getcwd()
    memo = {"argv": argv, "cwd": cwd, "root": root,
            "env": {name: os.environ.get(name) for name in sorted(set(env_names))},
            "request": request, "output": output}
    _write(_memo_path(root, argv, cwd), memo)


def _root(argv: list[str]) -> str | None:
    """The store root, from the leading ``--root`` options as click reads them (the last one
    wins), else the environment, else the default; None for a ``--root`` without a value."""
    root = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    i = 0
    while i < len(argv) and argv[i].startswith("--root"):
        if argv[i] == "--root" and i + 1 < len(argv):
            root, i = argv[i + 1], i + 2
        elif argv[i].startswith("--root="):
            root, i = argv[i][7:], i + 1
        else:
            return None
    return root


def _answer(argv: list[str]) -> tuple[str, list[str], dict] | None:
    """The image, its tags and the output choices for this command line, when it was
    recorded and nothing it depends on moved."""
    root = _root(argv)
    if root is None:
        return None
    cwd = os.getcwd()
    try:
        with open(_memo_path(root, argv, cwd)) as f:
            memo = json.load(f)
        # the hash found it; these say it is the very same command, run the same way
        if memo["argv"] != argv or memo["cwd"] != cwd or memo["root"] != root:
            return None
        if any(os.environ.get(name) != value for name, value in memo["env"].items()):
            return None
        fields = request_fields(**memo["request"])
        tags, output = list(memo["request"]["tags"]), memo["output"]
        output = {key: output[key] for key in ("quiet", "iidfile", "progress")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no memo, or one this version cannot read: the ordinary path decides
    image = lookup(root, fields) if fields else None
    return (image, tags, output) if image else None


def replay(argv: list[str]) -> int | None:
    """Answer ``pybuild [--root R] build ...`` (``argv`` without the program name) from the
    command-line memo and the recorded result; None to run the command."""
    found = _answer(argv)
    if found is None:
        return None
    image, tags, output = found
    if output["iidfile"]:
        with open(output["iidfile"], "w") as f:
            f.write(image)
    if output["quiet"]:
        sys.stdout.write(image + "\n")
    elif output["progress"] != "quiet":
        sys.stderr.write(summary(image, tags))
    return 0


REPLAYED = "every step CACHED: nothing changed since the last build"


def summary(image: str, tags: list[str]) -> str:
    """What ``--progress plain`` shows for an answered build (progress.PlainRenderer writes
    the same for the BuildReplayed and BuildDone events; a test holds the two together)."""
    lines = [f"#1 {REPLAYED}", "#1 DONE 0.0s", "", "#2 exporting to image",
             f"#2 writing image {image} done"]
    lines += [f"#2 naming to {tag} done" for tag in tags]
    return "\n".join(lines) + "\n"
