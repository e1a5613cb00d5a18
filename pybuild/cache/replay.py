"""Replay a build whose inputs are all unchanged, before the builder is even imported.

A successful build records, under ``ROOT/cache/results/<key>.json``, the image it produced,
the digest of ``refs.json`` after tagging, and a snapshot of every entry of the context (type,
mode, owner, size; for files the stat and, when the build hashed it, the content hash). The
key covers the Dockerfile's bytes and every build option. When the same build is asked for
again and every context entry is unchanged, the answer is the image the step-by-step cache
would give, so it is given at once. A file whose stat moved but whose content hash is equal
(a ``touch``) counts as unchanged, as it does for the cache. Anything unusual (``--no-cache``,
secrets, ``--output``, an option this module does not know) takes the ordinary path.

Only the standard library is imported here: this runs on every ``pybuild build``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time

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
    """The canonical description of a build request, or None when it cannot be read."""
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
    _write(_record_path(root, request_key(fields)), record, root)


def _write(path: str, record: dict, root: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
            _write(path, record, root)
        except OSError:
            pass
    return image


# -- the command line, read strictly: anything unknown goes to the ordinary path

_VALUED = {"-t": "tags", "--tag": "tags", "-f": "file", "--file": "file",
           "--build-arg": "build_args", "--target": "target", "--label": "labels",
           "--iidfile": "iidfile", "--progress": "progress", "--platform": "platform",
           "--network": "network"}
_MULTI = {"tags", "build_args", "labels"}


def _parse_build_argv(args: list[str]) -> dict | None:
    opts: dict = {"tags": [], "build_args": [], "labels": [], "quiet": False, "context": None}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg in ("-q", "--quiet"):
            opts["quiet"] = True
        elif name in _VALUED:
            if not eq:
                i += 1
                if i >= len(args):
                    return None
                value = args[i]
            key = _VALUED[name]
            if key in _MULTI:
                opts[key].append(value)
            else:
                opts[key] = value
        elif arg.startswith("-") or opts["context"] is not None:
            return None
        else:
            opts["context"] = arg
        i += 1
    return opts


def _root_and_rest(argv: list[str]) -> tuple[str, list[str]] | None:
    root = os.environ.get("PYBUILD_ROOT") or "/var/lib/pybuild"
    while argv and argv[0].startswith("--root"):
        if argv[0] == "--root" and len(argv) > 1:
            root, argv = argv[1], argv[2:]
        elif argv[0].startswith("--root="):
            root, argv = argv[0][7:], argv[1:]
        else:
            return None
    if not argv or argv[0] != "build":
        return None
    return root, argv[1:]


def build_args_from(values) -> dict[str, str | None]:
    """``--build-arg NAME=VALUE``; a bare ``NAME`` takes its value from the environment, as
    docker does (None when unset)."""
    out: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        out[key] = value if sep else os.environ.get(key)
    return out


def _fields_from(opts: dict) -> dict | None:
    args = build_args_from(opts["build_args"])
    labels = {}
    for item in opts["labels"]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return None
        labels[key] = value
    sde = os.environ.get("SOURCE_DATE_EPOCH", "")
    return request_fields(opts["context"] or ".", opts.get("file"), opts["tags"], args,
                          opts.get("target"), labels, opts.get("platform"),
                          opts.get("network", "default"), int(sde) if sde.isdigit() else None)


def replay(argv: list[str]) -> int | None:
    """Answer ``pybuild [--root R] build ...`` from a recorded result; None to build."""
    found = _root_and_rest(argv)
    opts = _parse_build_argv(found[1]) if found else None
    if found is None or opts is None:
        return None
    progress = opts.get("progress", "auto")
    if progress not in ("auto", "tty", "plain", "quiet"):
        return None
    fields = _fields_from(opts)
    image = lookup(found[0], fields) if fields else None
    if image is None:
        return None
    if opts.get("iidfile"):
        with open(opts["iidfile"], "w") as f:
            f.write(image)
    if opts["quiet"]:
        sys.stdout.write(image + "\n")
    elif progress != "quiet":
        sys.stderr.write(_summary(image, fields["tags"]))
    return 0


def _summary(image: str, tags: list[str]) -> str:
    lines = ["#1 [internal] load build definition and context", "#1 DONE 0.0s", "",
             "#2 every step CACHED: nothing changed since the last build", "#2 DONE 0.0s", "",
             "#3 exporting to image", f"#3 writing image {image} done"]
    lines += [f"#3 naming to {tag} done" for tag in tags]
    return "\n".join(lines) + "\n"


def clock_ns() -> int:
    return time.time_ns()
