"""colorgan-gather on a small fake package tree: what it keeps, what it skips and why, idempotence, apt fallback."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from training import gather


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


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    bg = root / "usr/share/backgrounds"
    _save(bg / "mate/nature/Meadow.jpg", _photo(700, 1000, 1))  # big photo: kept, downsized
    _save(bg / "mate/nature/Small.png", _photo(300, 200, 2))  # kept as PNG, untouched size
    _save(bg / "mate/nature/Tiny.jpg", _photo(100, 90, 3))  # tiny
    _save(bg / "mate/nature/Gray.jpg", np.repeat(_photo(300, 300, 4)[..., :1], 3, axis=2))  # near-gray
    _save(bg / "mate/nature/Chart.png", _diagram(200, 260))  # diagram
    _save(bg / "mate/desktop/Render.png", _photo(300, 300, 5))  # curated: not a photograph
    (bg / "gnome").mkdir(parents=True)
    (bg / "gnome/blobs.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    _save(bg / "wallpaper.jpg", _photo(300, 400, 6))  # ukui top level: curated illustrations
    ex = root / "usr/share/doc/opencv-doc/examples"
    _save(ex / "data/fruits.jpg", _photo(256, 320, 7))
    (ex / "data/broken.png").write_bytes(b"\x89PNG broken")
    _clip(ex / "data/Megamind.avi", 12)
    _clip(ex / "data/vtest.avi", 3)
    _clip(ex / "data/tree.avi", 3)
    return root


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_gather_keeps_photos_skips_the_rest(fake_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gather, "skimage_root", lambda: None)
    monkeypatch.setattr(gather, "default_roots", lambda out: [])
    out = tmp_path / "train"
    assert gather.main(["--out", str(out), "--src", str(fake_root), "--no-download"]) == 0
    printed = capsys.readouterr().out
    c = json.loads((out / "manifest.json").read_text())["counts"]
    assert c["mate-backgrounds"] == {
        "kept": 2, "skipped: tiny (< 128 px)": 1, "skipped: near-grayscale": 1,
        "skipped: diagram-like (flat areas / few colours)": 1, "skipped: illustration/logo (curated list)": 1,
    }
    assert c["gnome-backgrounds"] == {"skipped: svg": 1}
    assert c["ukui-wallpapers"] == {"skipped: illustration/logo (curated list)": 1}
    assert c["opencv-doc"] == {"kept": 1, "skipped: unreadable or transparent": 1}
    assert c["frames/Megamind"] == {"kept": 3}  # frames 0, 4, 8 of 12
    assert "mate-backgrounds: kept 2" in printed and "near-grayscale 1" in printed
    files = _files(out)
    assert "images/mate-backgrounds/nature_Meadow.jpg" in files and "images/mate-backgrounds/nature_Small.png" in files
    assert "images/opencv-doc/data_fruits.jpg" in files
    assert [f for f in files if f.startswith("frames/")] == [f"frames/Megamind/Megamind_{i:05d}.jpg" for i in (0, 4, 8)]
    # held-out clips copied byte for byte, never sampled
    for clip in ("vtest.avi", "tree.avi"):
        assert (out / "heldout" / clip).read_bytes() == (fake_root / "usr/share/doc/opencv-doc/examples/data" / clip).read_bytes()
        assert not (out / "frames" / clip[:-4]).exists()
    from PIL import Image

    with Image.open(out / "images/mate-backgrounds/nature_Meadow.jpg") as im:
        assert min(im.size) == 512 and im.size == (731, 512)
    with Image.open(out / "images/mate-backgrounds/nature_Small.png") as im:
        assert im.size == (200, 300)

    # idempotent: a second run changes nothing
    stamp = {f: (out / f).stat().st_mtime_ns for f in files if f != "manifest.json"}
    manifest = (out / "manifest.json").read_text()
    assert gather.main(["--out", str(out), "--src", str(fake_root), "--no-download"]) == 0
    assert _files(out) == files
    assert {f: (out / f).stat().st_mtime_ns for f in stamp} == stamp
    assert (out / "manifest.json").read_text() == manifest
    # an output an earlier run kept but this one does not (e.g. after a filter change) is removed
    _save(out / "images/mate-backgrounds/nature_Old.jpg", _photo(200, 200, 8))
    assert gather.main(["--out", str(out), "--src", str(fake_root), "--no-download"]) == 0
    assert _files(out) == files


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
    monkeypatch.setattr(gather, "skimage_root", lambda: None)
    out = tmp_path / "train"
    monkeypatch.setattr(gather, "default_roots", lambda o: [o / "pkgs"])
    manifest = gather.gather(out)
    assert (out / "debs" / deb.name).is_file()
    assert (out / "pkgs/usr/share/backgrounds/mate/nature/Leaf.jpg").is_file()
    assert manifest["counts"]["mate-backgrounds"] == {"kept": 1}
    assert sorted(manifest["missing_packages"]) == ["gnome-backgrounds", "opencv-doc", "ukui-wallpapers"]
    assert "download mate-backgrounds" in log.read_text()
    # run again: the .deb is there, no second download
    gather.gather(out)
    assert log.read_text().count("download mate-backgrounds") == 1
