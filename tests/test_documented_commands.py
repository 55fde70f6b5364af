"""Every rendering command that README.md, docs/filter.md and examples/ show runs as written, relative paths
included, from a folder laid out like the repository (``examples/`` there), through bash as a user types it.

The film names in the documents (``film_bw.mkv``, ``film.mkv``) are made here: short black-and-white clips.
``[...]`` optional arguments are left out; lines with ``...`` are templates, not commands. Commands that pipe
into ffmpeg are skipped only where ffmpeg is not installed (``make test`` installs it)."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PREFIXES = ("vspipe ", "examples/", "colorgan-render ", "python examples/")
FILMS = ("film_bw.mkv", "film.mkv")


def _shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)


def _docstring_lines(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix in (".vpy", ".py"):
        return (ast.get_docstring(ast.parse(text)) or "").splitlines()
    return [line.lstrip("# ") for line in text.splitlines() if line.startswith("#")]


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for each rendering command in the documents."""
    found = []
    sources = [(ROOT / "README.md", "\n".join(_shell_blocks((ROOT / "README.md").read_text()))),
               (ROOT / "docs" / "filter.md", "\n".join(_shell_blocks((ROOT / "docs" / "filter.md").read_text())))]
    sources += [(p, "\n".join(_docstring_lines(p))) for p in sorted((ROOT / "examples").iterdir())
                if p.suffix in (".vpy", ".py", ".sh")]
    for path, text in sources:
        for line in text.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line.strip())  # a trailing comment
            if not line.startswith(PREFIXES) or "..." in line:
                continue
            line = re.sub(r"\s*\[[^\]]*\]", "", line).strip()  # optional arguments
            found.append((path.relative_to(ROOT).as_posix(), line))
    # the same command in several documents, with another film or output name, runs once
    seen, unique = set(), []
    for where, line in found:
        key = re.sub(r"film(_bw)?\.mkv", "FILM", re.sub(r"\S+\.(mp4|png)$", "OUT", line))
        if key not in seen:
            seen.add(key)
            unique.append((where, line))
    return unique


COMMANDS = documented_commands()


def test_the_documents_show_the_commands_we_expect() -> None:
    commands = [c for _, c in COMMANDS]
    # the fast form of the README's adapt-and-render command is the command itself plus --adapt-steps only
    adapt = next(c for c in commands if "--adapt" in c.split())
    assert as_run(adapt) == adapt + " --adapt-steps 3" and as_run(as_run(adapt)) == as_run(adapt)
    assert any(c.startswith("vspipe") and "colorize.vpy" in c for c in commands)
    assert any(c.startswith("examples/encode.sh") for c in commands)
    assert any(c.startswith("colorgan-render") for c in commands)
    assert any(c.startswith("python examples/demo.py") for c in commands)


def write_film(path: Path, frames: int = 12, w: int = 128, h: int = 96) -> None:
    """A short gray clip with a moving square (FFV1 in Matroska, BT.601 tags)."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=10)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        y, x = np.mgrid[0:h, 0:w]
        for t in range(frames):
            gray = (40 + 150 * x / w).astype(np.uint8)
            gray[20:50, 4 * t: 30 + 4 * t] = 230
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[:, :, None], 3, 2), format="rgb24").reformat(format="yuv420p")
            frame.pts = t
            out.mux(v.encode(frame))
        out.mux(v.encode(None))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like the repository's root for what the commands read: examples/ (linked) and the films."""
    d = tmp_path_factory.mktemp("user")
    (d / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    for name in FILMS:
        write_film(d / name)
    write_reference(d / "refs" / "ref_000000.png")
    return d


def write_reference(path: Path, w: int = 128, h: int = 96) -> None:
    """Step 2 of the keyframe workflow, done here: frame 0 of :func:`write_film` coloured (warm left, cool right)."""
    from PIL import Image

    y, x = np.mgrid[0:h, 0:w]
    gray = (40 + 150 * x / w)
    gray[20:50, 0:30] = 230  # frame 0's square: the luma matches the frame (a colour key, not a palette)
    rgb = np.stack([gray + 30 * (x < w / 2), gray, gray + 30 * (x >= w / 2)], -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)


def _shims(folder: Path) -> str:
    """PATH entries for console scripts this environment's install predates (an editable install made
    before pyproject named them): ``python -m`` stand-ins, so the command line stays as documented."""
    scripts = {"colorgan-render": "vs_colorgan.render"}
    for name, module in scripts.items():
        if not (VENV_BIN / name).exists():
            folder.mkdir(exist_ok=True)
            shim = folder / name
            shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m {module} \"$@\"\n")
            shim.chmod(0o755)
    return f"{folder}{os.pathsep}" if folder.is_dir() else ""


# Arguments the test adds to a documented command that would otherwise take minutes on the test's tiny film:
# they shorten the run only (what the command writes is checked the same). The documents show the real command.
FAST_ARGUMENTS = {"--adapt": "--adapt-steps 3"}  # colorgan-render --adapt: ~2 min at colorgan-adapt's default steps


def as_run(command: str) -> str:
    """``command`` with :data:`FAST_ARGUMENTS` appended where it uses the slow option (and does not set them)."""
    words = command.split()
    for option, extra in FAST_ARGUMENTS.items():
        if option in words and extra.split()[0] not in words and "|" not in words:
            command = f"{command} {extra}"
    return command


def run_as_user(command: str, cwd: Path) -> subprocess.CompletedProcess:
    shims = _shims(cwd.parent / f"{cwd.name}-bin")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{shims}{os.environ.get('PATH', '')}",
           "VIRTUAL_ENV": str(VENV_BIN.parent),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PWD": str(cwd)}  # what a shell started in cwd has; bash would also reset a stale one
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _outputs(command: str) -> list[str]:
    """Files the command should leave: the last word of an ffmpeg, encode.sh or colorgan-render command."""
    last = command.split("|")[-1].split()
    if last[0] in ("ffmpeg", "examples/encode.sh", "colorgan-render"):
        return [last[-1] if last[0] == "ffmpeg" else last[2]]
    if "examples/demo.py" in command:
        return ["out/sample_colorized.mp4", "out/sample_contact_sheet.png"]
    return []


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}: {c[:60]}" for w, c in COMMANDS])
def test_documented_command_runs_as_written(where: str, command: str, workdir: Path) -> None:
    needs_ffmpeg = "ffmpeg" in command or command.startswith("examples/encode.sh")
    if needs_ffmpeg and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (make test installs it)")
    outputs = _outputs(command)
    for name in outputs:
        (workdir / name).unlink(missing_ok=True)
    done = run_as_user(as_run(command), workdir)
    assert done.returncode == 0, f"{where}: {as_run(command)}\n{done.stderr[-3000:]}"
    for name in outputs:
        assert (workdir / name).is_file() and (workdir / name).stat().st_size > 0, name
    if not outputs and command.rstrip().endswith(" -"):
        assert done.stdout, "nothing written to stdout"


def test_readme_python_example_runs_with_a_plain_install(workdir: Path) -> None:
    """README's first Python block (core.bs.VideoSource + colorize), with its relative file name."""
    readme = (ROOT / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    assert "core.bs.VideoSource" in code
    done = run_as_user(f"{shlex_quote(sys.executable)} - <<'EOF'\n{code}\nclip.get_frame(0)\nEOF", workdir)
    assert done.returncode == 0, done.stderr[-3000:]


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def test_vpy_reads_user_paths_from_the_start_folder_even_from_elsewhere(workdir: Path, tmp_path: Path) -> None:
    """The script named by a path with folders, the film by a relative path: vspipe R81 runs the script
    from examples/, but src= is read from where the command was started."""
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(workdir / "film.mkv", nested / "clip.mkv")
    done = run_as_user(f"vspipe -e 0 -a src=b/clip.mkv {shlex_quote(str(ROOT / 'examples' / 'colorize.vpy'))} --",
                       tmp_path / "a")
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_as_user("vspipe -e 0 -a src=missing.mkv examples/colorize.vpy --", workdir)
    assert done.returncode != 0 and str(workdir / "missing.mkv") in done.stderr
