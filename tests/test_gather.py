"""colorgan-gather on a small fake package tree: what it keeps, what it skips and why, idempotence, apt fallback."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vs_colorgan.training import gather


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour gradients + sensor-like noise: what the filters take for a photograph."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([0.5 + 0.4 * np.sin(x / 37 + seed), y / h, 1 - x / w], -1) * 0.85 + rng.normal(0, 0.04, (h, w, 3))
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _diagram(h: int, w: int) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    img[20:80, 30:120] = (255, 0, 0)
    img[100:150, 60:200] = (0, 0, 255)
    return img


def _save(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def _clip(path: Path, frames: int = 10) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 128))
    for i in range(frames):
        vw.write(cv2.cvtColor(_photo(128, 160, i), cv2.COLOR_RGB2BGR))
    vw.release()


def make_rcc(path: Path, files: dict[str, bytes], *, zlib_compressed: frozenset[str] = frozenset()) -> None:
    """A Qt resource archive (format version 1, as Qt's rcc writes it) holding ``files`` (folders from "/")."""
    import struct
    import zlib

    tree: dict = {}
    for name, data in files.items():
        node = tree
        *dirs, leaf = name.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = name
    names, data_blob, nodes = bytearray(), bytearray(), []

    def name_offset(n: str) -> int:
        off = len(names)
        names.extend(struct.pack(">HI", len(n), 0) + n.encode("utf-16-be"))
        return off

    # breadth first: the children of a folder are consecutive nodes
    nodes.append(None)  # root, filled below
    pending = [(0, tree)]
    while pending:
        index, children = pending.pop(0)
        first = len(nodes)
        entries = sorted(children.items())
        nodes.extend([None] * len(entries))
        for i, (n, child) in enumerate(entries):
            if isinstance(child, dict):
                nodes[first + i] = ("dir", name_offset(n), child)
                pending.append((first + i, child))
            else:
                payload = files[child]
                if child in zlib_compressed:
                    payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
                off = len(data_blob)
                data_blob.extend(struct.pack(">I", len(payload)) + payload)
                nodes[first + i] = ("file", name_offset(n), off, 1 if child in zlib_compressed else 0)
        prev = nodes[index]
        nodes[index] = ("dirfilled", 0 if prev is None else prev[1], len(entries), first)
    tree_bytes = bytearray()
    for node in nodes:
        if node[0] == "dirfilled":
            tree_bytes.extend(struct.pack(">IHII", node[1], 0x02, node[2], node[3]))
        else:
            tree_bytes.extend(struct.pack(">IHHHI", node[1], node[3], 0, 0, node[2]))
    header = 20
    tree_off, data_off = header, header + len(tree_bytes)
    names_off = data_off + len(data_blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"qres" + struct.pack(">IIII", 1, tree_off, data_off, names_off) + tree_bytes + data_blob + names)


def _encoded(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def _cutout(h: int, w: int, seed: int) -> np.ndarray:
    """A photo-like object in the middle of a transparent canvas (a tuxpaint stamp)."""
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4, :3] = _photo(h // 2, w // 2, seed)
    rgba[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4, 3] = 255
    return rgba


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    bg = root / "usr/share/backgrounds"
    _save(bg / "mate/nature/Meadow.jpg", _photo(700, 1000, 1))  # big photo: kept, downsized
    _save(bg / "mate/nature/Small.png", _photo(300, 200, 2))  # kept as PNG, untouched size
    _save(bg / "mate/nature/Tiny.jpg", _photo(100, 90, 3))  # tiny
    _save(bg / "mate/nature/Gray.jpg", np.repeat(_photo(300, 300, 4)[..., :1], 3, axis=2))  # near-gray
    _save(bg / "mate/nature/Chart.png", _diagram(200, 260))  # diagram
    _save(bg / "mate/desktop/Render.png", _photo(300, 300, 5))  # outside mate's keep list (renders)
    _save(bg / "Dragonfly_by_Bolly.jpg", _photo(300, 400, 6))  # a lomiri photo on its keep list
    _save(bg / "Abstract_by_Someone.jpg", _photo(300, 400, 16))  # lomiri folder, not on the list
    ex = root / "usr/share/doc/opencv-doc/examples"
    _save(ex / "data/fruits.jpg", _photo(256, 320, 7))
    _save(ex / "data/fruits_copy.png", _photo(256, 320, 7)[::2, ::2])  # the same photo, half size: a duplicate
    _save(ex / "data/starry_night.jpg", _photo(256, 320, 17))  # a painting: dropped by name
    (ex / "data/broken.png").write_bytes(b"\x89PNG broken")
    _clip(ex / "data/Megamind.avi", 12)  # animation: never sampled
    _clip(ex / "data/vtest.avi", 3)
    _clip(ex / "data/tree.avi", 3)
    rcc = root / "usr/share/gcompris-qt/rcc"
    make_rcc(rcc / "erase.rcc", {
        "gcompris/src/activities/erase/resource/cow.webp": _encoded(_photo(240, 320, 8), "WEBP"),
        "gcompris/src/activities/erase/resource/deep/horse.jpg": _encoded(_photo(200, 300, 9)),
        "gcompris/src/activities/erase/Erase.qml": b"import QtQuick 2.12",
    }, zlib_compressed=frozenset({"gcompris/src/activities/erase/resource/deep/horse.jpg"}))
    make_rcc(rcc / "paintings.rcc", {"gcompris/src/activities/paintings/resource/image/gogh.jpg": _encoded(_photo(240, 320, 10))})
    stamps = root / "usr/share/tuxpaint/stamps"
    _save(stamps / "animals/birds/owl.png", _cutout(300, 400, 11))
    _save(stamps / "clothes/hats/fedora.png", _cutout(300, 400, 12))  # drawings: dropped
    wp = root / "usr/share/wallpapers"
    _save(wp / "Path/contents/images/640x480.jpg", _photo(480, 640, 13))
    _save(wp / "Path/contents/images/1280x960.jpg", _photo(960, 1280, 13))  # the largest is the one read
    _save(wp / "Kite/contents/images/640x480.jpg", _photo(480, 640, 14))  # an illustration
    return root


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_rcc_reader_round_trip(tmp_path):
    from vs_colorgan.training.rcc import RccError, iter_rcc

    files = {"a/b/one.bin": b"\x00\x01" * 100, "a/two.txt": b"hello", "three": b"x"}
    make_rcc(tmp_path / "t.rcc", files, zlib_compressed=frozenset({"a/two.txt"}))
    assert dict(iter_rcc(tmp_path / "t.rcc")) == files
    (tmp_path / "bad.rcc").write_bytes(b"PK\x03\x04 not qres")
    with pytest.raises(RccError, match="not a Qt resource archive"):
        list(iter_rcc(tmp_path / "bad.rcc"))
    truncated = (tmp_path / "t.rcc").read_bytes()[:40]
    (tmp_path / "cut.rcc").write_bytes(truncated)
    with pytest.raises(RccError):
        list(iter_rcc(tmp_path / "cut.rcc"))


def test_gather_keeps_photos_skips_the_rest(fake_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gather, "python_sources", lambda: [])
    monkeypatch.setattr(gather, "default_roots", lambda out: [])
    out = tmp_path / "train"
    assert gather.main(["--out", str(out), "--src", str(fake_root), "--no-download"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["mate-backgrounds"] == {
        "kept": 2, "skipped: tiny (< 128 px)": 1, "skipped: near-grayscale": 1,
        "skipped: diagram-like (flat areas / few colours)": 1, "skipped: not a photograph (curated list)": 1,
    }
    assert c["lomiri-wallpapers"] == {"kept": 1, "skipped: not a photograph (curated list)": 1}
    assert c["opencv-doc"] == {"kept": 1, "skipped: near-duplicate": 1, "skipped: not a photograph (curated list)": 1,
                               "skipped: unreadable or transparent": 1}
    assert c["gcompris-qt-data"] == {"kept": 2, "skipped: not a photograph (curated list)": 1}
    assert c["tuxpaint-stamps-default"] == {"kept": 1, "skipped: not a photograph (curated list)": 1}
    assert c["plasma-workspace-wallpapers"] == {"kept": 1, "skipped: not a photograph (curated list)": 1}
    assert "frames/Megamind" not in c and "animation" in " ".join(c["clips"])
    assert "mate-backgrounds: kept 2" in printed and "near-grayscale 1" in printed
    assert {k["source"]: k["licence"] for k in manifest["kept"]}["gcompris-qt-data"].startswith("per file")
    files = _files(out)
    for f in ("images/mate-backgrounds/nature_Meadow.jpg", "images/mate-backgrounds/nature_Small.png",
              "images/opencv-doc/data_fruits.jpg", "images/gcompris-qt-data/erase_cow.jpg",
              "images/gcompris-qt-data/erase_deep_horse.jpg", "images/tuxpaint-stamps-default/animals_birds_owl.png",
              "images/plasma-workspace-wallpapers/Path.jpg", "images/lomiri-wallpapers/Dragonfly_by_Bolly.jpg"):
        assert f in files
    assert not [f for f in files if f.startswith("frames/")]
    # held-out clips copied byte for byte, never sampled
    for clip in ("vtest.avi", "tree.avi"):
        assert (out / "heldout" / clip).read_bytes() == (fake_root / "usr/share/doc/opencv-doc/examples/data" / clip).read_bytes()
    from PIL import Image

    with Image.open(out / "images/mate-backgrounds/nature_Meadow.jpg") as im:
        assert min(im.size) == 512 and im.size == (731, 512)
    with Image.open(out / "images/mate-backgrounds/nature_Small.png") as im:
        assert im.size == (200, 300)
    with Image.open(out / "images/tuxpaint-stamps-default/animals_birds_owl.png") as im:
        assert im.size == (200, 150)  # cropped to the opaque object, no transparent margin left
    with Image.open(out / "images/plasma-workspace-wallpapers/Path.jpg") as im:
        assert im.size == (683, 512)  # the 1280x960 picture, downsized

    # idempotent: a second run changes nothing
    stamp = {f: (out / f).stat().st_mtime_ns for f in files if f != "manifest.json"}
    text = (out / "manifest.json").read_text()
    assert gather.main(["--out", str(out), "--src", str(fake_root), "--no-download"]) == 0
    assert _files(out) == files
    assert {f: (out / f).stat().st_mtime_ns for f in stamp} == stamp
    assert (out / "manifest.json").read_text() == text
    # an output an earlier run kept but this one does not (e.g. after a filter change) is removed
    _save(out / "images/mate-backgrounds/nature_Old.jpg", _photo(200, 200, 8))
    assert gather.main(["--out", str(out), "--src", str(fake_root), "--no-download"]) == 0
    assert _files(out) == files


def test_dhash_matches_copies_not_other_photos():
    a = _photo(240, 320, 1)
    assert bin(gather.dhash(a) ^ gather.dhash(a[::2, ::2])).count("1") <= gather.DUPLICATE_BITS
    assert bin(gather.dhash(a) ^ gather.dhash(_photo(240, 320, 2))).count("1") > gather.DUPLICATE_BITS


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_missing_packages_are_downloaded_and_unpacked(tmp_path, monkeypatch):
    """A fresh machine: `apt-get download` (faked here, offline) then a real `dpkg -x`."""
    pkgdir = tmp_path / "build" / "mate-backgrounds"
    _save(pkgdir / "usr/share/backgrounds/mate/nature/Leaf.jpg", _photo(300, 400, 11))
    (pkgdir / "DEBIAN").mkdir()
    (pkgdir / "DEBIAN/control").write_text(
        "Package: mate-backgrounds\nVersion: 9.9\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n"
    )
    deb = tmp_path / "build" / "mate-backgrounds_9.9_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkgdir), str(deb)], check=True, capture_output=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apt.log"
    (bindir / "apt-get").write_text(
        f"#!/bin/sh\necho \"$@\" >> {log}\n"
        f"[ \"$2\" = mate-backgrounds ] && cp {deb} . && exit 0\necho \"E: no $2\" >&2; exit 100\n"
    )
    (bindir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(gather, "python_sources", lambda: [])
    out = tmp_path / "train"
    monkeypatch.setattr(gather, "default_roots", lambda o: [o / "pkgs"])
    manifest = gather.gather(out)
    assert (out / "debs" / deb.name).is_file()
    assert (out / "pkgs/usr/share/backgrounds/mate/nature/Leaf.jpg").is_file()
    assert manifest["counts"]["mate-backgrounds"] == {"kept": 1}
    assert "opencv-doc" in manifest["missing_packages"] and "mate-backgrounds" not in manifest["missing_packages"]
    assert "download mate-backgrounds" in log.read_text()
    # run again: the .deb is there, no second download
    gather.gather(out)
    assert log.read_text().count("download mate-backgrounds") == 1
