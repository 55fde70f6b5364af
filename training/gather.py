"""``colorgan-gather``: build our own training set from photographs and clips that packages ship.

    colorgan-gather --out data/train

Sources (all freely licensed media from Debian and PyPI packages):

* Debian ``mate-backgrounds``, ``gnome-backgrounds``, ``ukui-wallpapers``: desktop wallpapers
  (photographs among them); ``opencv-doc``: the sample images and clips of OpenCV's examples.
* scikit-image's bundled ``skimage.data`` images.

Where the Debian packages are not unpacked yet (a fresh machine), they are fetched with
``apt-get download`` into ``OUT/debs`` and unpacked with ``dpkg -x`` into ``OUT/pkgs``.

Only real colour photographs are kept: SVG, images under 128 px on the short side, near-gray images
(low chroma) and diagram-like or synthetic images (few distinct colours, large flat areas, no
fine texture) are skipped, each counted with its reason. Images are downsized to a short side of at
most 512 and written to ``OUT/images/<source>/``. Frames of the clips are sampled into
``OUT/frames/<clip>/``, except the clips held out for evaluation (``vtest.avi``, ``tree.avi``), which are
copied untouched into ``OUT/heldout/``. Running it again gives the same folder (existing outputs
are kept). ``OUT/manifest.json`` lists what was kept and why the rest was skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

PACKAGES: dict[str, str] = {
    # package -> folder it installs its media in (relative to an unpack root)
    "mate-backgrounds": "usr/share/backgrounds/mate",
    "gnome-backgrounds": "usr/share/backgrounds/gnome",
    "ukui-wallpapers": "usr/share/backgrounds",  # top level of the folder only (the others own subfolders)
    "opencv-doc": "usr/share/doc/opencv-doc/examples",
}
TOP_LEVEL_ONLY = {"ukui-wallpapers"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".avi", ".mp4", ".mkv", ".mov", ".webm"}
HELDOUT_CLIPS = ("vtest.avi", "tree.avi")  # reserved for evaluate/: never trained on
SKIP_CLIPS = {"Megamind_bugy.avi": "damaged duplicate of Megamind.avi"}
MIN_SHORT_SIDE = 128
MAX_SHORT_SIDE = 512
FRAME_STEP = 4  # sample every 4th frame of a training clip (neighbouring frames are near-duplicates)
MAX_FRAMES = 200

# Filters, tuned on the packages above (see docs/training.md). Measured on a 256 px thumbnail.
MIN_CHROMA_FRACTION = 0.05  # fraction of pixels with Lab chroma > 8: below = near-gray
MAX_FLAT_FRACTION = 0.3  # fraction of pixels whose 3x3 neighbourhood is exactly uniform: above = flat diagram
MIN_COLOURS_90 = 50  # distinct colours (5 bits/channel) covering 90% of pixels: below = few colours

# Computer-generated wallpapers, logos and colour charts that pass the statistics above (smooth
# renders look like out-of-focus photographs to them): named here after looking at each. All of
# gnome-backgrounds 43 and ukui-wallpapers 20.04 are illustrations; of mate-backgrounds only
# nature/ holds photographs.
NOT_PHOTOS: tuple[str, ...] = (
    "gnome-backgrounds:*", "ukui-wallpapers:*", "mate-backgrounds:abstract/*", "mate-backgrounds:desktop/*",
    "opencv-doc:data/WindowsLogo.jpg", "opencv-doc:data/LinuxLogo.jpg", "opencv-doc:data/opencv-logo*",
    "opencv-doc:data/pic*.png", "opencv-doc:data/starry_night.jpg", "opencv-doc:fuzzy/*",
    "opencv-doc:ximgproc/stanford.png",
    "skimage:color.png", "skimage:logo.png",
)


def image_stats(rgb: np.ndarray) -> dict[str, float]:
    """Figures the filters use, on an RGB uint8 image (any size; thumbnailed to 256 px short side)."""
    import cv2

    h, w = rgb.shape[:2]
    s = 256 / min(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
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
        "chroma_fraction": float((chroma > 8).mean()),
        "flat_fraction": flat,
        "colours_90": colours_90,
        "texture": texture,
    }


def reject_reason(rgb: np.ndarray) -> str | None:
    """Why an image is not a usable colour photograph, or ``None`` to keep it."""
    if min(rgb.shape[:2]) < MIN_SHORT_SIDE:
        return f"tiny (< {MIN_SHORT_SIDE} px)"
    st = image_stats(rgb)
    if st["chroma_fraction"] < MIN_CHROMA_FRACTION:
        return "near-grayscale"
    if st["flat_fraction"] > MAX_FLAT_FRACTION or st["colours_90"] < MIN_COLOURS_90:
        return "diagram-like (flat areas / few colours)"
    return None


def curated_not_photo(source: str, rel: str) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(f"{source}:{rel}", pat) for pat in NOT_PHOTOS)


def _read_rgb(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA", "P"):
                im = im.convert("RGBA")
                if im.getextrema()[3][0] < 255:  # transparent: an icon or logo, not a photograph
                    return None
            return np.asarray(im.convert("RGB"))
    except Exception:  # PIL raises many kinds for damaged files
        return None


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


def _find_package_roots(out: Path, extra: list[str]) -> dict[str, Path]:
    """For each package, the first root holding its media folder."""
    candidates = [Path(p) for p in extra] + default_roots(out)
    found = {}
    for pkg, rel in PACKAGES.items():
        for root in candidates:
            marker = root / rel
            if pkg in TOP_LEVEL_ONLY:
                ok = marker.is_dir() and any(f.is_file() and f.suffix.lower() in IMAGE_EXTS for f in marker.iterdir())
            else:
                ok = marker.is_dir()
            if ok:
                found[pkg] = root
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


def _iter_files(root: Path, top_level_only: bool):
    if top_level_only:
        yield from sorted(f for f in root.iterdir() if f.is_file())
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(filenames):
            yield Path(dirpath) / n


def _out_name(src_root: Path, f: Path) -> str:
    rel = f.relative_to(src_root)
    stem = "_".join(rel.with_suffix("").parts)
    return stem.replace(" ", "_")


def gather_images(source: str, root: Path, out: Path, counts: dict[str, Counter], manifest: dict, top_level_only: bool = False) -> list[Path]:
    """Filter and copy the photographs of one source; return the video files met (handled by the caller)."""
    videos = []
    for f in _iter_files(root, top_level_only):
        ext = f.suffix.lower()
        if ext in VIDEO_EXTS:
            videos.append(f)
            continue
        if ext == ".svg" or ext == ".svgz":
            counts[source]["skipped: svg"] += 1
            continue
        if ext not in IMAGE_EXTS:
            continue
        if curated_not_photo(source, f.relative_to(root).as_posix()):
            counts[source]["skipped: illustration/logo (curated list)"] += 1
            continue
        rgb = _read_rgb(f)
        if rgb is None:
            counts[source]["skipped: unreadable or transparent"] += 1
            continue
        reason = reject_reason(rgb)
        if reason:
            counts[source][f"skipped: {reason}"] += 1
            manifest["skipped"].append({"source": source, "file": str(f), "reason": reason})
            continue
        dest = out / "images" / source / (_out_name(root, f) + (".png" if ext == ".png" else ".jpg"))
        if not dest.exists():
            _write(_downsize(rgb), dest)
        counts[source]["kept"] += 1
        manifest["kept"].append({"source": source, "file": str(f), "out": str(dest.relative_to(out))})
    return videos


def gather_clip(clip: Path, out: Path, counts: dict[str, Counter], manifest: dict) -> None:
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
                if st["chroma_fraction"] < MIN_CHROMA_FRACTION:
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


def skimage_root() -> Path | None:
    try:
        import skimage.data
    except ImportError:
        return None
    return Path(skimage.data.__file__).parent


def gather(out: Path, *, src: list[str] = (), download: bool = True) -> dict:
    """Build the training folder ``out``; return the manifest (also written to OUT/manifest.json)."""
    out.mkdir(parents=True, exist_ok=True)
    roots = _find_package_roots(out, list(src))
    missing = [p for p in PACKAGES if p not in roots]
    if missing and download:
        fetch_packages(missing, out)
        roots.update(_find_package_roots(out, list(src)))
    counts: dict[str, Counter] = defaultdict(Counter)
    manifest: dict = {"kept": [], "skipped": [], "frames": {}, "heldout": [], "missing_packages": [p for p in PACKAGES if p not in roots]}
    for pkg in PACKAGES:
        if pkg not in roots:
            print(f"colorgan-gather: package {pkg} not available; skipped", file=sys.stderr)
            continue
        media = roots[pkg] / PACKAGES[pkg]
        for clip in gather_images(pkg, media, out, counts, manifest, top_level_only=pkg in TOP_LEVEL_ONLY):
            gather_clip(clip, out, counts, manifest)
    sk = skimage_root()
    if sk is not None:
        gather_images("skimage", sk, out, counts, manifest, top_level_only=True)
    # Outputs of an earlier run that this run no longer keeps (e.g. after a filter change) go away,
    # so the folder is always exactly what the manifest says.
    produced = {out / k["out"] for k in manifest["kept"]}
    for sub in ("images", "frames"):
        for p in sorted((out / sub).rglob("*")) if (out / sub).is_dir() else []:
            if p.is_file() and p not in produced:
                p.unlink()
                counts["stale outputs"]["removed"] += 1
    manifest["counts"] = {k: dict(v) for k, v in counts.items()}
    from vs_colorgan.model_io import atomic_write

    text = json.dumps(manifest, indent=2, sort_keys=True)
    atomic_write(out / "manifest.json", lambda tmp: Path(tmp).write_text(text))
    return manifest


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
