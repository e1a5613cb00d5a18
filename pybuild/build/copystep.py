"""COPY and ADD: resolve sources and destination, stage the files, commit them as a layer.

Sources come from the context (after .dockerignore), another stage or image (``--from``),
heredocs, URLs (ADD) or local archives that ADD extracts. Ownership is 0:0 unless
``--chown``; the destination is resolved through symlinks inside the image, never the host.

As in BuildKit 20.10 each source (each wildcard match) is copied on its own, in order, onto
what the ones before it left: a file goes into the destination when that is a directory or
is written with a trailing "/", else it becomes the destination (through a symlink there),
so several files without a "/" leave the last one; a directory's contents merge into the
destination directory; a wildcard that matches nothing copies nothing.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shutil
from dataclasses import dataclass, replace

from pybuild.build import addsource
from pybuild.build.prepared import Prepared
from pybuild.build.rootfs import RootfsView
from pybuild.build.sources import context_items, items_digest, stage_items
from pybuild.build.staging import Item, Staging, apply_chmod
from pybuild.build.stepcontext import Output, StepContext
from pybuild.build.users import resolve_owner
from pybuild.errors import BuildError
from pybuild.instructions import Add, Copy
from pybuild.plan.state import StageState
from pybuild.plan.steps import CopyPlan
from pybuild.store.records import LayerRef


@dataclass(frozen=True)
class Sources:
    items: tuple[Item, ...]
    digest: str
    manifest: tuple[tuple[str, str], ...]
    count: int  # sources named (after wildcards)
    any_dir: bool
    archives: tuple[tuple[int, str], ...] = ()  # ADD: (group, host path) of archives


def prepare(ex: StepContext, state: StageState, plan: CopyPlan) -> Prepared:
    sources = _sources(ex, state, plan.inst)

    def execute(on_output: Output) -> LayerRef:
        return _execute(ex, state, plan.inst, plan.dest, sources)

    return Prepared(plan, execute, sources_digest=sources.digest, manifest=sources.manifest)


def _sources(ex: StepContext, state: StageState, inst: Copy | Add) -> Sources:
    heredoc_words = {f"<<{d.name}" for d in inst.heredocs}
    named = [state.expand(s, inst.line) for s in inst.sources if s not in heredoc_words]
    from_ = getattr(inst, "from_", None)
    if from_ and not inst.heredocs:
        # not expanded: BuildKit 20.10 takes --from as written ($X is no stage or image)
        return _stage_sources(ex, from_, inst, named)
    items = [_heredoc_item(state, inst, doc) for doc in inst.heredocs]
    plain = named
    if isinstance(inst, Add):
        urls = [s for s in plain if addsource.is_url(s)]
        plain = [s for s in plain if s not in urls]
        if inst.checksum and (plain or inst.heredocs):  # as BuildKit: URLs only
            raise BuildError("checksum can't be specified for non-HTTP(S) sources")
        items.extend(addsource.fetch(u, inst.checksum, inst.chmod) for u in urls)
    items = [replace(item, group=n) for n, item in enumerate(items)]
    return _context_sources(ex, inst, plain, items)


def _stage_sources(ex: StepContext, ref: str, inst: Copy | Add, named: list[str]) -> Sources:
    """``--from``: the files come from another stage or an image, the digest from them."""
    view = ex.view(ex.state_for(ref, inst.line))
    found, count, any_dir = stage_items(view, named, inst.chmod, ref, excludes=inst.exclude,
                                        parents=getattr(inst, "parents", False))
    return Sources(tuple(found), items_digest(found, None), (), count, any_dir)


def _heredoc_item(state: StageState, inst: Copy | Add, doc) -> Item:
    body = state.expand_heredoc(doc.content, inst.line) if doc.expand else doc.content
    return Item(doc.name, "file", apply_chmod(0o644, inst.chmod, False), data=body.encode())


def _context_sources(ex: StepContext, inst: Copy | Add, plain: list[str],
                     items: list[Item]) -> Sources:
    """The context files named in ``plain`` joined to ``items`` (heredocs, URLs); the digest
    covers the items' data, the context manifest and any archive ADD extracts."""
    archives: list[tuple[int, str]] = []
    entries = ex.files.resolve_sources(
        plain, excludes=inst.exclude, parents=getattr(inst, "parents", False),
        instruction=inst.keyword) if plain else []
    first = len(items)  # heredocs and URLs are groups 0..first-1
    if isinstance(inst, Add) and inst.unpack is not False:
        entries, archives = addsource.split_archives(ex.files.root, entries)
        archives = [(first + match, path) for match, path in archives]
    manifest = ex.files.manifest(entries) if entries else ()
    items = [*items, *context_items(entries, ex.files.root, inst.chmod, first,
                                    ex.files.file_sha256)]
    roots = {e.relpath for e in entries if e.kind == "dir" and e.dest == ""}
    top = [e for e in entries if (e.kind == "dir" and e.dest == "") or not any(
        r == "" or e.relpath.startswith(r + "/") for r in roots)]
    count = len(items) - len(entries) + len(top) + len(archives)
    parts = [items_digest([i for i in items if i.data is not None], None),
             json.dumps(manifest), addsource.archives_digest([p for _, p in archives])]
    digest = "sha256:" + hashlib.sha256("|".join(parts).encode()).hexdigest()
    return Sources(tuple(items), digest, manifest, count, bool(roots), tuple(archives))


def _execute(ex: StepContext, state: StageState, inst: Copy | Add, dest: str,
             sources: Sources) -> LayerRef:
    view = ex.view(state)
    chown = resolve_owner(view, inst.chown) if inst.chown else None
    tree = ex.tempdir("copy-")
    try:
        staging = Staging(tree, view, ex.file_pool)
        _stage(staging, view, inst, dest, sources, chown)
        staging.finish()
        return ex.commit_dir(state, tree, upper=False)
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise


def _stage(staging: Staging, view: RootfsView, inst: Copy | Add, dest: str, sources: Sources,
           chown: tuple[int, int] | None) -> None:
    uid, gid = chown or (0, None)  # of the directories the copy makes (None: as mkdir)
    slash = dest.endswith("/")
    real_dir = view.resolve(dest.rstrip("/") or "/")
    groups = _groups(sources)
    if getattr(inst, "parents", False):  # (newer than BuildKit 20.10) one decision for all
        single = len(groups) == 1 and groups[0][1] and groups[0][1][0].kind != "dir"
        if slash or not single or staging.is_dir(real_dir):
            target_dir = staging.ensure_dir(real_dir, uid=uid, gid=gid)
            for _, items, _ in groups:
                for item in items:
                    if item.rel or item.kind != "dir":
                        staging.put(target_dir, item, chown)
            return
    for _, items, archive in groups:
        if archive is not None:
            addsource.extract(archive, staging.ensure_dir(real_dir, uid=uid, gid=gid))
        elif items[0].kind == "dir" and items[0].rel == "":
            # a directory's contents go in; the destination keeps its own metadata or 0755
            target_dir = staging.ensure_dir(real_dir, uid=uid, gid=gid)
            for item in items[1:]:
                staging.put(target_dir, item, chown)
        elif slash or staging.is_dir(real_dir):
            staging.put(staging.ensure_dir(real_dir, uid=uid, gid=gid), items[0], chown)
        else:  # the file becomes the destination, written through a symlink there
            real = view.resolve(dest)
            parent = staging.ensure_dir(posixpath.dirname(real), uid=uid, gid=gid)
            staging.put(parent, replace(items[0], rel=posixpath.basename(real)), chown)


def _groups(sources: Sources) -> list[tuple[int, list[Item], str | None]]:
    """The sources in the order BuildKit copies them: (group, its items, or an archive)."""
    by_group: dict[int, list[Item]] = {}
    for item in sources.items:
        by_group.setdefault(item.group, []).append(item)
    found: list[tuple[int, list[Item], str | None]] = [
        (group, items, None) for group, items in by_group.items()]
    found.extend((group, [], path) for group, path in sources.archives)
    return sorted(found, key=lambda g: g[0])
