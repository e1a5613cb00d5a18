"""Stage dependencies: ``COPY --from``, ``RUN --mount from=``, the base, cycles, reachability."""

from __future__ import annotations

from collections.abc import Sequence

from pybuild.errors import StageError
from pybuild.instructions import Copy, Instruction, Run


def references(inst: Instruction) -> list[str]:
    """The stage-or-image names an instruction reads from, unexpanded."""
    if isinstance(inst, Copy) and inst.from_:
        return [inst.from_]
    if isinstance(inst, Run):
        return [m.from_ for m in inst.mounts if m.from_]
    return []


def resolve_ref(ref: str, names: Sequence[str | None], line: int) -> int | None:
    """Stage index for ``ref`` (a name, any case, or a number), None for an image name."""
    if ref.isdigit():
        index = int(ref)
        if index >= len(names):
            raise StageError(f"invalid stage index {index}", line=line)
        return index
    lowered = ref.lower()
    return next((i for i, n in enumerate(names) if n == lowered), None)


def find_cycle(edges: Sequence[Sequence[int]]) -> int | None:
    """The first stage (by index) that lies on a dependency cycle, or None."""
    state = [0] * len(edges)  # 0 new, 1 on the current path, 2 done

    def visit(node: int) -> bool:
        state[node] = 1
        for dep in edges[node]:
            if state[dep] == 1 or (state[dep] == 0 and visit(dep)):
                return True
        state[node] = 2
        return False

    for start in range(len(edges)):
        if state[start] == 0 and visit(start):
            return start
    return None


def reachable(edges: Sequence[Sequence[int]], target: int) -> tuple[int, ...]:
    seen, todo = {target}, [target]
    while todo:
        for dep in edges[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return tuple(sorted(seen))
