#!/usr/bin/env bash
# Colourize a video to H.264: vspipe runs examples/colorize.vpy and writes y4m to stdout, ffmpeg encodes it.
#
#   examples/encode.sh film.mkv film-colour.mp4 [model.safetensors|model.onnx]
#
# The colour tags (matrix, primaries, transfer, range) the filter writes on its frames are not carried
# by y4m, so they are read from the source here (with the filter's own defaults) and given to ffmpeg.
# Environment: VSPIPE (default vspipe), FFMPEG (default ffmpeg), CRF (default 18), PRESET (default medium),
# EXTRA (more -a key=value arguments for colorize.vpy, e.g. EXTRA="-a render_size=320").
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 INPUT OUTPUT.mp4 [MODEL]" >&2
    exit 2
fi
# absolute paths: vspipe runs colorize.vpy from the script's own folder (VapourSynth R81)
absolute() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s' "$PWD/$1" ;; esac; }
input=$(absolute "$1") output=$2 model=${3:+$(absolute "$3")}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python}
[[ -f $input ]] || { echo "$0: $1 is not a file" >&2; exit 2; }

args=(-a "src=$input")
[[ -n $model ]] && args+=(-a "model=$model")
# shellcheck disable=SC2206
[[ -n ${EXTRA:-} ]] && args+=($EXTRA)

# ffmpeg's names for the tags vs_colorgan writes (ITU-T H.273 code points), from the source's first frame
read -r colorspace primaries trc range < <("$python" - "$input" <<'PY'
import sys
import vapoursynth as vs
from vs_colorgan.formats import resolve_colorimetry

clip = vs.core.bs.VideoSource(sys.argv[1])
if clip.format.color_family == vs.RGB:  # colorize gives RGB back, and y4m carries YUV and gray only
    sys.exit("encode.sh: the source is RGB, which y4m cannot carry; use colorgan-render (it encodes RGB as YUV)")
cm = resolve_colorimetry(clip.get_frame(0).props, width=clip.width, height=clip.height,
                         is_float=clip.format.sample_type == vs.FLOAT)
spaces = {1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc"}
prims = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}
trcs = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 13: "iec61966-2-1",
        14: "bt2020-10", 15: "bt2020-12"}
print(spaces[cm.matrix], prims.get(cm.primaries, "bt709"), trcs.get(cm.transfer, "bt709"),
      "pc" if cm.full_range else "tv")
PY
)

"${VSPIPE:-vspipe}" -c y4m "${args[@]}" "$here/colorize.vpy" - |
    "${FFMPEG:-ffmpeg}" -hide_banner -loglevel warning -y -i - \
        -c:v libx264 -preset "${PRESET:-medium}" -crf "${CRF:-18}" -pix_fmt yuv420p \
        -colorspace "$colorspace" -color_primaries "$primaries" -color_trc "$trc" -color_range "$range" \
        -movflags +faststart "$output"
echo "wrote $output ($colorspace, $range range)" >&2
