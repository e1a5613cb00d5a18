"""One exception tree for everything pybuild raises on purpose.

Anything else escaping the library is a bug. The CLI prints ``str(error)`` as one line and
exits with ``error.exit_code``.

    PybuildError
    ├── DockerfileError            a Dockerfile is wrong; carries file and line
    │   ├── ParseError             syntax: directives, JSON form, heredocs, ENV without value
    │   ├── InstructionError       semantics of one instruction: unknown name, bad flag, bad value
    │   └── StageError             stages: unknown or self-referencing stage, bad --target
    ├── ExpansionError             shell-word expansion ($VAR, ${VAR:?msg}, quoting)
    ├── IgnorePatternError         a bad .dockerignore pattern
    ├── ContextError               the build context is missing or unreadable
    ├── StoreError                 the content store
    │   ├── BlobNotFound
    │   ├── DigestMismatch         content read from outside does not match its digest or size
    │   ├── LockTimeout
    │   └── CorruptStore
    ├── LayerError                 reading or writing a layer tar
    │   └── UnsafePathError        an entry would write outside its root
    ├── ImageError
    │   ├── ReferenceError_        a malformed image reference
    │   └── ImageNotFound
    ├── ArchiveError               docker-archive / OCI layout that cannot be read or written
    ├── BuildError                 a build step failed: step, RUN exit code, log tail
    ├── RunnerError                the sandbox could not be set up
    ├── ContainerError             a container operation that cannot be done (state, name)
    │   └── ContainerNotFound
    ├── RegistryError              talking to a registry
    ├── VolumeError                a volume: bad name, unknown driver, missing, in use
    ├── NetworkError               networking: settings file, IPAM, links, nftables, networks
    │   └── NetworkNotFound
    └── UsageError                 a bad combination of options given to the library or CLI
"""

from __future__ import annotations


class PybuildError(Exception):
    """Base of every error pybuild raises on purpose."""

    exit_code = 1


class DockerfileError(PybuildError):
    """An error located in a Dockerfile: renders as ``FILE:LINE: message``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def located(self, file: str | None = None, line: int | None = None) -> DockerfileError:
        """A copy of this error with the file (and line, if unknown) filled in."""
        err = type(self).__new__(type(self))
        DockerfileError.__init__(
            err, self.message, file=self.file or file, line=self.line or line
        )
        return err

    def __str__(self) -> str:
        where = self.file or "Dockerfile"
        if self.line is not None:
            return f"{where}:{self.line}: {self.message}"
        return f"{where}: {self.message}"


class ParseError(DockerfileError):
    """The Dockerfile's syntax is wrong."""


class InstructionError(DockerfileError):
    """One instruction is malformed: unknown name or flag, bad value."""


class StageError(DockerfileError):
    """Stages do not fit together: unknown stage, a stage that uses itself, bad target."""


class ExpansionError(PybuildError):
    """A shell word could not be expanded."""


class IgnorePatternError(PybuildError):
    """A .dockerignore pattern is malformed."""


class ContextError(PybuildError):
    """The build context does not exist or cannot be read."""


class StoreError(PybuildError):
    """The content store refused an operation."""


class BlobNotFound(StoreError):
    """No blob with that digest is in the store."""


class DigestMismatch(StoreError):
    """Content does not match the digest or size it was announced with."""


class LockTimeout(StoreError):
    """Another pybuild process held the store lock for too long."""


class CorruptStore(StoreError):
    """A record in the store is broken."""


class LayerError(PybuildError):
    """A layer tar could not be read, written or applied."""


class UnsafePathError(LayerError):
    """A tar entry would write outside the extraction root."""


class ImageError(PybuildError):
    """Image metadata is wrong or missing."""


class ReferenceError_(ImageError):  # noqa: N801 - avoid shadowing the builtin ReferenceError
    """A malformed image reference."""


class ImageNotFound(ImageError):
    """No image by that name or id."""


class ArchiveError(PybuildError):
    """An image archive could not be read or written."""


class BuildError(PybuildError):
    """A build step failed.

    When a step that ran failed, ``step`` is its instruction as the progress shows it
    (``RUN make``), ``returncode`` the exit status of its process (None when no process ran,
    as for a missing COPY source) and ``log_tail`` the last lines the step printed. The name is
    subprocess's, not ``exit_code``: that one is the CLI's exit status for every PybuildError.
    """

    def __init__(self, message: str, *, step: str | None = None, returncode: int | None = None,
                 log_tail: tuple[str, ...] = ()):
        super().__init__(message)
        self.step = step
        self.returncode = returncode
        self.log_tail = log_tail


class ContainerError(PybuildError):
    """A container operation that cannot be done: a name taken, a container not running; or
    (``exit_status`` set) a container that ``containers.run`` waited for exited non-zero."""

    def __init__(self, message: str, *, exit_status: int | None = None):
        super().__init__(message)
        self.exit_status = exit_status


class ContainerNotFound(ContainerError):
    """No container has that name or id (prefix)."""


class RunnerError(PybuildError):
    """The sandbox could not be set up or the process could not be started."""


class RegistryError(PybuildError):
    """A registry request failed."""


class VolumeError(PybuildError):
    """A volume operation was refused: a bad name or driver, no such volume, one in use."""


class NetworkError(PybuildError):
    """Networking refused or failed: the settings file, an address, a link, a firewall rule."""


class NetworkNotFound(NetworkError):
    """No network has that name or id (prefix)."""


class UsageError(PybuildError):
    """Options that do not make sense together."""

    exit_code = 2
