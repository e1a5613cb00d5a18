"""COPY and ADD: resolve sources and destination, stage the files, commit them as a layer.

Sources come from the context (after .dockerignore), another stage or image (``--from``),
heredocs, URLs (ADD) or local archives that ADD extracts. Ownership is 0:0 unless
``--chown``; the destination is resolved through symlinks inside the image, never the host.
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
from pybuild.build.users import resolve_chown
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
    archives: tuple[str, ...] = ()  # ADD: host paths of archives to extract


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
        return _stage_sources(ex, state.expand(from_, inst.line), inst, named)
    items = [_heredoc_item(state, inst, doc) for doc in inst.heredocs]
    plain = named
    if isinstance(inst, Add):
        urls = [s for s in plain if addsource.is_url(s)]
        plain = [s for s in plain if s not in urls]
        if inst.checksum and (plain or inst.heredocs):  # as BuildKit: URLs only
            raise BuildError("checksum can't be specified for non-HTTP(S) sources")
        items.extend(addsource.fetch(u, inst.checksum, inst.chmod) for u in urls)
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
    archives: list[str] = []
    entries = ex.files.resolve_sources(
        plain, excludes=inst.exclude, parents=getattr(inst, "parents", False),
        instruction=inst.keyword) if plain else []
    if isinstance(inst, Add) and inst.unpack is not False:
        entries, archives = addsource.split_archives(ex.files.root, entries)
    manifest = ex.files.manifest(entries) if entries else ()
    items = [*items, *context_items(entries, ex.files.root, inst.chmod)]
    roots = {e.relpath for e in entries if e.kind == "dir" and e.dest == ""}
    top = [e for e in entries if (e.kind == "dir" and e.dest == "") or not any(
        r == "" or e.relpath.startswith(r + "/") for r in roots)]
    count = len(items) - len(entries) + len(top) + len(archives)
    parts = [items_digest([i for i in items if i.data is not None], None),
             json.dumps(manifest), addsource.archives_digest(archives)]
    digest = "sha256:" + hashlib.sha256("|".join(parts).encode()).hexdigest()
    return Sources(tuple(items), digest, manifest, count, bool(roots), tuple(archives))


def _execute(ex: StepContext, state: StageState, inst: Copy | Add, dest: str,
             sources: Sources) -> LayerRef:
    view = ex.view(state)
    chown = resolve_chown(view, inst.chown) if inst.chown else None
    tree = ex.tempdir("copy-")
    try:
        staging = Staging(tree, view)
        _stage(staging, view, inst, dest, sources, chown)
        staging.finish()
        return ex.commit_dir(state, tree, upper=False)
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise


def _stage(staging: Staging, view: RootfsView, inst: Copy | Add, dest: str, sources: Sources,
           chown: tuple[int, int] | None) -> None:
    uid, gid = chown or (0, 0)  # of the directories the copy makes
    items = sources.items
    top_files = [i for i in items if i.kind != "dir" and "/" not in i.rel]
    as_dir = (dest.endswith("/") or sources.any_dir or sources.count > 1
              or bool(sources.archives) or view.is_dir(dest))
    if not as_dir and len(items) == 1 and items[0].kind != "dir":
        parent = view.resolve(posixpath.dirname(dest) or "/")
        target_dir = staging.ensure_dir(parent, uid=uid, gid=gid)
        staging.put(target_dir, replace(items[0], rel=posixpath.basename(dest)), chown)
        return
    if not as_dir and len(top_files) > 1:
        raise BuildError(f"When using {inst.keyword} with more than one source file, the "
                         "destination must be a directory and end with a /")
    real = view.resolve(dest.rstrip("/") or "/")
    target_dir = staging.ensure_dir(real, uid=uid, gid=gid)
    for item in items:
        if item.rel == "" and item.kind == "dir":
            continue  # a dir's contents go in; the destination keeps its own metadata or 0755
        staging.put(target_dir, item, chown)
    for archive in sources.archives:
        addsource.extract(archive, target_dir, chown)
