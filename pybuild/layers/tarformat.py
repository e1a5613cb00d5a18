"""POSIX tar headers (ustar plus PAX extended records), written and parsed by hand.

Python's tarfile costs ~15x GNU tar per small file, so the hot paths build and parse the 512-byte
blocks directly. Writing always uses ustar fields when a value fits and a PAX record when not;
reading also accepts GNU long names, base-256 numbers and old GNU magic. ``TarWriter`` puts
whole archives (``save``) together from these headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from pybuild.errors import LayerError

BLOCK = 512
REG, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
PAX_LOCAL, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"
XATTR_PREFIX = "SCHILY.xattr."

_MAX_OCTAL_7 = 8**7 - 1
_MAX_OCTAL_11 = 8**11 - 1
_USTAR_MAGIC = b"ustar\x0000"


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
           typeflag: bytes, linkname: bytes, major: int, minor: int) -> bytes:
    head = b"".join((
        name.ljust(100, b"\0"),
        _octal(mode, 8), _octal(uid, 8), _octal(gid, 8),
        _octal(size, 12), _octal(mtime, 12),
    ))
    tail = b"".join((
        typeflag, linkname.ljust(100, b"\0"), _USTAR_MAGIC,
        bytes(64),  # blank user and group names: ownership is numeric only
        _octal(major, 8), _octal(minor, 8), bytes(167),
    ))
    checksum = sum(head) + sum(tail) + 8 * 0x20
    return head + b"%06o\0 " % checksum + tail


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def header(name: bytes, *, mode: int, uid: int, gid: int, size: int, mtime: int,
           typeflag: bytes, linkname: bytes = b"", major: int = 0, minor: int = 0,
           xattrs: dict[str, bytes] | None = None) -> bytes:
    """The blocks announcing one entry: a PAX header first when a value needs it."""
    records: list[bytes] = []
    binary = False
    if len(name) > 100:
        records.append(_pax_record(b"path", name))
        binary |= not _is_utf8(name)
        name = name[:100]
    if len(linkname) > 100:
        records.append(_pax_record(b"linkpath", linkname))
        binary |= not _is_utf8(linkname)
        linkname = linkname[:100]
    for key, value, limit in ((b"size", size, _MAX_OCTAL_11), (b"uid", uid, _MAX_OCTAL_7),
                              (b"gid", gid, _MAX_OCTAL_7), (b"mtime", mtime, _MAX_OCTAL_11)):
        if value > limit:
            records.append(_pax_record(key, b"%d" % value))
    size, uid, gid, mtime = (min(size, _MAX_OCTAL_11), min(uid, _MAX_OCTAL_7),
                             min(gid, _MAX_OCTAL_7), min(mtime, _MAX_OCTAL_11))
    for key in sorted(xattrs or ()):
        records.append(_pax_record((XATTR_PREFIX + key).encode(), xattrs[key]))  # type: ignore[index]
    entry = _ustar(name, mode, uid, gid, size, mtime, typeflag, linkname, major, minor)
    if not records:
        return entry
    if binary:
        records.insert(0, _pax_record(b"hdrcharset", b"BINARY"))
    return pax_block(name, mtime, b"".join(records)) + entry


def pax_block(name: bytes, mtime: int, payload: bytes) -> bytes:
    base = name.rstrip(b"/").rsplit(b"/", 1)[-1]
    pax_name = (b"PaxHeaders/" + base)[:100]
    head = _ustar(pax_name, 0o644, 0, 0, len(payload), mtime, PAX_LOCAL, b"", 0, 0)
    return head + payload + padding(len(payload))


END_OF_ARCHIVE = bytes(2 * BLOCK)
RECORD = 20 * BLOCK  # tar(1)'s default record: its archives end on a whole one


def padding(size: int) -> bytes:
    """The zeros after ``size`` bytes of entry data, up to the next block."""
    return bytes(-size % BLOCK)


class TarWriter:
    """A whole archive of root-owned entries (uid/gid 0, blank names) with one mtime, written
    to any stream, pipes included: the same entries in the same order give the same bytes."""

    def __init__(self, out: BinaryIO, mtime: int = 0):
        self.out = out
        self.mtime = mtime
        self.written = 0

    def _write(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.written += len(data)

    def _header(self, name: str, typeflag: bytes, size: int, mode: int) -> None:
        self._write(header(name.encode("utf-8", "surrogateescape"), mode=mode, uid=0, gid=0,
                           size=size, mtime=self.mtime, typeflag=typeflag))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", DIR, 0, 0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_chunks(name, len(data), (data,))

    def add_chunks(self, name: str, size: int, chunks: Iterable[bytes | memoryview]) -> None:
        """A regular file of ``size`` bytes, its data the ``chunks`` (which must add up)."""
        self._header(name, REG, size, 0o644)
        start = self.written
        for chunk in chunks:
            self._write(chunk)
        if self.written - start != size:
            raise ValueError(f"tar entry {name}: {self.written - start} bytes, header said {size}")
        self._write(padding(size))

    def close(self) -> None:
        """The end-of-archive blocks, then zeros to a whole record as tar(1) writes."""
        self._write(END_OF_ARCHIVE)
        self._write(bytes(-self.written % RECORD))
        self.out.flush()


# --- reading --------------------------------------------------------------------------------


@dataclass
class Header:
    """One entry as read, after PAX and GNU long-name records were applied."""

    name: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    typeflag: bytes
    linkname: bytes
    major: int
    minor: int
    xattrs: dict[str, bytes] = field(default_factory=dict)


def _number(field_: bytes, what: str) -> int:
    if field_[:1] in (b"\x80", b"\xff"):  # GNU base-256
        value = int.from_bytes(field_[1:], "big")
        return value - (1 << (8 * (len(field_) - 1))) if field_[0] == 0xFF else value
    text = field_.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise LayerError(f"bad tar header: {what} field {text!r} is not a number") from None


def _cstr(field_: bytes) -> bytes:
    return field_.split(b"\0", 1)[0]


def is_zero_block(block: bytes | memoryview) -> bool:
    return not any(block)


def parse_block(block: bytes) -> Header:
    """The fields of one 512-byte header block; raises LayerError on a bad checksum."""
    stored = _number(block[148:156], "checksum")
    unsigned = sum(block[:148]) + sum(block[156:]) + 8 * 0x20
    if stored != unsigned:
        # Some old tars summed signed chars.
        signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 8 * 0x20
        if stored != signed:
            raise LayerError("bad tar header: checksum mismatch (corrupt or not a tar)")
    name = _cstr(block[0:100])
    if block[257:265] == _USTAR_MAGIC:
        prefix = _cstr(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    return Header(
        name=name,
        mode=_number(block[100:108], "mode"),
        uid=_number(block[108:116], "uid"),
        gid=_number(block[116:124], "gid"),
        size=_number(block[124:136], "size"),
        mtime_ns=_number(block[136:148], "mtime") * 1_000_000_000,
        typeflag=block[156:157] or REG,
        linkname=_cstr(block[157:257]),
        major=_number(block[329:337], "devmajor"),
        minor=_number(block[337:345], "devminor"),
    )


def parse_pax(payload: bytes) -> dict[bytes, bytes]:
    """PAX ``length key=value\\n`` records; values stay bytes (xattrs are binary)."""
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(payload):
        if payload[pos] == 0:
            break
        space = payload.find(b" ", pos)
        try:
            length = int(payload[pos:space])
        except ValueError:
            raise LayerError("bad PAX header: malformed record length") from None
        record = payload[space + 1:pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise LayerError("bad PAX header: malformed record")
        key, value = record[:-1].split(b"=", 1)
        records[key] = value
        pos += length
    return records


def apply_pax(hdr: Header, records: dict[bytes, bytes]) -> None:
    for key, value in records.items():
        if key == b"path":
            hdr.name = value
        elif key == b"linkpath":
            hdr.linkname = value
        elif key in (b"size", b"uid", b"gid"):
            setattr(hdr, key.decode(), int(value))
        elif key == b"mtime":
            hdr.mtime_ns = _pax_time_ns(value)
        elif key.startswith(XATTR_PREFIX.encode()):
            hdr.xattrs[key[len(XATTR_PREFIX):].decode("utf-8", "surrogateescape")] = value


def _pax_time_ns(value: bytes) -> int:
    whole, _, frac = value.partition(b".")
    try:
        seconds = int(whole)
        nanos = int((frac + b"000000000")[:9]) if frac else 0
    except ValueError:
        raise LayerError(f"bad PAX header: mtime {value!r}") from None
    return seconds * 1_000_000_000 + (-nanos if seconds < 0 or whole.startswith(b"-") else nanos)
