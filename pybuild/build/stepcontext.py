"""What a layer step may use of the build around it.

The step modules (RUN, COPY/ADD, WORKDIR and their helpers) see the build only through this
interface: the build context's files, the few options a step reads, the states of other
stages, and the store-facing operations that make a layer. The executor's
:class:`pybuild.build.workspace.Workspace` implements it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from pybuild.build.rootfs import RootfsView
from pybuild.context.walk import BuildContext
from pybuild.plan.state import StageState
from pybuild.store.filepool import FilePool
from pybuild.store.records import LayerRef

Output = Callable[[str, bytes], None]  # (stream name, bytes) of a running step


class StepContext(Protocol):
    @property
    def files(self) -> BuildContext:
        """The build context, seen through its .dockerignore."""

    @property
    def network(self) -> str:
        """The network a RUN without ``--network`` asks for (default|none|host)."""

    @property
    def build_args(self) -> Mapping[str, str | None]:
        """The ``--build-arg`` values as given (RUN passes the proxy ones on)."""

    @property
    def secrets(self) -> Mapping[str, str]:
        """Secret id -> host file."""

    @property
    def scratch(self) -> Path:
        """The store's temp dir: where short-lived files of a step go."""

    @property
    def cache_root(self) -> Path:
        """The store root, under which cache mounts live."""

    @property
    def file_pool(self) -> FilePool:
        """Big staged files that layers share (``pybuild.store.filepool``)."""

    def state_for(self, ref: str, line: int) -> StageState:
        """The state ``--from=ref`` names: a stage built earlier (name or index) or an image."""

    def flatten(self, ref: str) -> str:
        """A plain directory holding the files of stage or image ``ref`` (for mounts)."""

    def lowerdirs(self, state: StageState) -> list[Path]:
        """The unpacked layers of ``state``, bottom to top."""

    def view(self, state: StageState) -> RootfsView:
        """A read-only view of ``state``'s filesystem."""

    def tempdir(self, prefix: str) -> Path:
        """A new empty directory (mode 755) in the store's temp dir."""

    def commit_dir(self, state: StageState, tree: Path, *, upper: bool) -> LayerRef:
        """Write ``tree`` (an overlay upper dir when ``upper``) as the layer on ``state``."""
