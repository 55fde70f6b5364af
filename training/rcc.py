"""Read files out of Qt resource archives (``.rcc``), where ``gcompris-qt-data`` keeps its photographs.

Layout (Qt's ``rcc`` tool, ``src/tools/rcc/rcc.cpp``, format versions 1-3): a header ``b"qres"``, version,
then the offsets of the node tree, the data blob and the name table (all big-endian ``uint32``). Each tree
node is ``name_offset u32, flags u16`` followed by either ``child_count u32, first_child u32`` (a folder,
flag 0x02) or ``country u16, language u16, data_offset u32`` (a file); from version 2 on every node also
carries a ``u64`` modification time. A name is ``length u16, hash u32`` and UTF-16BE characters. File data
is ``size u32`` and the bytes; flag 0x01 means qCompress (``u32`` uncompressed size + a zlib stream), flag
0x04 a zstd frame (read only when the ``zstandard`` package is installed).

>>> for name, data in iter_rcc("explore_farm_animals.rcc"):
...     print(name, len(data))
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

COMPRESSED_ZLIB = 0x01
DIRECTORY = 0x02
COMPRESSED_ZSTD = 0x04


class RccError(ValueError):
    """Not a Qt resource archive, or a damaged one."""


def _u16(buf: bytes, at: int) -> int:
    return struct.unpack_from(">H", buf, at)[0]


def _u32(buf: bytes, at: int) -> int:
    return struct.unpack_from(">I", buf, at)[0]


def iter_rcc(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(relative path, bytes)`` of every file in the archive, folders joined with ``/``.

    Files compressed with zstd are skipped when ``zstandard`` is missing. Raises :class:`RccError` on a
    file that is not an archive or whose offsets point outside it.
    """
    buf = Path(path).read_bytes()
    if len(buf) < 20 or buf[:4] != b"qres":
        raise RccError(f"{path}: not a Qt resource archive (no 'qres' header)")
    version, tree, data, names = struct.unpack_from(">IIII", buf, 4)
    if version not in (1, 2, 3):
        raise RccError(f"{path}: unknown rcc format version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        at = names + offset
        length = _u16(buf, at)
        return buf[at + 6 : at + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str, depth: int) -> Iterator[tuple[str, bytes]]:
        if depth > 64:
            raise RccError(f"{path}: folder tree deeper than 64 levels (damaged archive)")
        at = tree + index * node_size
        flags = _u16(buf, at + 4)
        name = name_at(_u32(buf, at)) if index else ""
        full = f"{prefix}/{name}" if prefix else name
        if flags & DIRECTORY:
            count, first = _u32(buf, at + 6), _u32(buf, at + 10)
            for child in range(first, first + count):
                yield from walk(child, full, depth + 1)
            return
        offset = data + _u32(buf, at + 10)
        size = _u32(buf, offset)
        blob = buf[offset + 4 : offset + 4 + size]
        if len(blob) != size:
            raise RccError(f"{path}: data of {full!r} runs past the end of the file")
        if flags & COMPRESSED_ZLIB:
            blob = zlib.decompress(blob[4:])  # qCompress: u32 uncompressed size, then zlib
        elif flags & COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError:
                return
            blob = zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 28)
        yield full, blob

    try:
        yield from walk(0, "", 0)
    except (struct.error, zlib.error, UnicodeDecodeError) as e:
        raise RccError(f"{path}: damaged archive ({e})") from None
