"""``report.html``: one self-contained page per run that people open in a browser.

The page reads only the run folder (``report.json``, the pictures, the videos) and, for the
input side of the comparisons, the few input frames it shows, decoded from the input video
named in the report. Pictures are inlined as data URIs; the run's videos are linked relatively,
so the page works from the folder offline and moves with it. Every text that comes from the
run (paths, settings, names) is escaped.

A small inline script drives the wipe sliders and, once the page has loaded, marks
``<body data-images="ok">`` when every picture decoded (``"broken"`` otherwise), which the
browser test reads back.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidcam import run as run_folder
from vidcam.config import RenderConfig
from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_write_text
from vidcam.io.video import read_frames, read_video
from vidcam.run import Report, read_report

REPORT_HTML = "report.html"
CONTACT_SHEET = "contact_sheet.png"
JPEG_QUALITY = 90
SHARPNESS_SIDE = 480  # deblur runs rank every input frame's sharpness on frames this small

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#222;background:#fafafa}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.frames{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
figure{margin:0}figcaption{color:#555;font-size:13px;margin-top:4px}
.wipe{position:relative;display:block;width:100%;line-height:0;user-select:none}
.wipe img{display:block;width:100%;height:auto}
.wipe img.before{position:absolute;left:0;top:0;width:100%;height:100%}
.wipe .line{position:absolute;top:0;bottom:0;width:2px;background:#fff;box-shadow:0 0 3px #000;pointer-events:none}
.wipe .tag{position:absolute;top:6px;line-height:1;font-size:12px;background:rgba(0,0,0,.55);color:#fff;padding:3px 6px;border-radius:3px}
.wipe input{position:absolute;left:0;bottom:4px;width:100%;margin:0;opacity:.85}
img.plot{max-width:100%;background:#fff;border:1px solid #e4e4e4}
video{width:100%;background:#000}
.bar{display:inline-block;height:10px;background:#6a8fd8;vertical-align:middle}
pre{background:#fff;border:1px solid #e4e4e4;padding:10px;overflow:auto;font-size:12px;max-height:600px}
.note{color:#8a5a00}
"""

SCRIPT = """
document.querySelectorAll('.wipe').forEach(function (wipe) {
  var before = wipe.querySelector('img.before'), line = wipe.querySelector('.line');
  var slider = wipe.querySelector('input');
  function show() {
    var percent = Number(slider.value);
    before.style.clipPath = 'inset(0 ' + (100 - percent) + '% 0 0)';
    line.style.left = 'calc(' + percent + '% - 1px)';
  }
  slider.addEventListener('input', show);
  show();
});
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (image) { return !(image.complete && image.naturalWidth > 0); });
  document.body.setAttribute('data-image-count', String(images.length));
  document.body.setAttribute('data-images', broken.length ? 'broken' : 'ok');
});
"""


def write_report_html(run_folder_path: Path) -> Path:
    """Write ``report.html`` into a finished run folder (replacing an earlier one) and return its path."""
    folder = Path(run_folder_path)
    if not folder.is_dir():
        raise VidcamError(f"run folder not found: {folder}")
    report = read_report(folder)
    if report is None:
        raise VidcamError(f"{folder} holds no finished vidcam run (no {run_folder.REPORT_NAME})")
    page = _page(folder, report)
    target = folder / REPORT_HTML
    atomic_write_text(target, page)
    return target


# ----------------------------------------------------------------------------- the page


def _page(folder: Path, report: Report) -> str:
    name = Path(report.input).name
    width, height = (report.size + [0, 0])[:2]
    summary = (
        f"{report.mode.upper()} run · {report.frames} frames · {width}×{height} · {_fps_text(report.fps)} fps · "
        f"{report.steps} steps on {report.device}"
    )
    frames, posters = _frames_section(folder, report)
    sections = [
        frames,
        _videos_section(folder, posters),
        _camera_section(folder, report),
        _training_section(folder, report),
        _atlas_section(folder),
        _windows_section(report.windows),
        _fidelity_section(folder, report.fidelity),
        _timings_section(report),
        _plan_section(report),
        _settings_section(folder, report),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>vidcam · {_e(name)}</title><style>{STYLE}</style></head>\n<body>\n"
        f"<h1>vidcam · {_e(name)}</h1><p class=\"sub\">{_e(summary)}<br>input: <code>{_e(report.input)}</code></p>\n"
        f"{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _frames_section(folder: Path, report: Report) -> tuple[str, dict[str, str]]:
    """The wipe sliders, and poster pictures for the videos (data URIs by video name): a video
    shows nothing until it is played, in some browsers and in page screenshots."""
    render = _render_settings(report)
    output_path = folder / run_folder.SDR_VIDEO
    if not output_path.is_file() or report.frames < 1:
        return "<h2>Input and output</h2><p class=\"note\">no enhanced.mp4 in this run folder</p>", {}
    chosen, why = _chosen_frames(folder, report, render.report_frames)
    try:
        outputs = read_frames(output_path, chosen)
    except VidcamError as exc:  # the page still shows everything else
        return f"<h2>Input and output</h2><p class=\"note\">{_e(exc)}</p>", {}
    inputs, input_problem = _input_frames(folder, report, chosen, outputs.shape[1:3])
    figures = []
    posters = {run_folder.SDR_VIDEO: _jpeg_uri(_shrink(outputs[0], render.report_max_side))}
    if inputs is not None and (folder / run_folder.COMPARE_VIDEO).is_file():
        posters[run_folder.COMPARE_VIDEO] = _jpeg_uri(_shrink(np.concatenate([inputs[0], outputs[0]], 1), render.report_max_side))
    for slot, t in enumerate(chosen):
        after = _shrink(outputs[slot], render.report_max_side)
        caption = f"frame {t}{why.get(t, '')}{_exposure_caption(report, t)}"
        if inputs is None:
            picture = f"<img src=\"{_jpeg_uri(after)}\" alt=\"output frame {t}\">"
            figures.append(f"<figure>{picture}<figcaption>{_e(caption)}</figcaption></figure>")
            continue
        before = _shrink(inputs[slot], render.report_max_side)
        figures.append(_wipe(before, after, t, caption))
    note = f"<p class=\"note\">{_e(input_problem)}</p>" if input_problem else ""
    intro = "<p class=\"sub\">Drag the slider: input on the left of the line, output on the right.</p>" if inputs is not None else ""
    return f"<h2>Input and output</h2>{intro}{note}<div class=\"frames\">{''.join(figures)}</div>", posters


def _wipe(before: np.ndarray, after: np.ndarray, t: int, caption: str) -> str:
    return (
        "<figure><div class=\"wipe\">"
        f"<img class=\"after\" src=\"{_jpeg_uri(after)}\" alt=\"output frame {t}\">"
        f"<img class=\"before\" src=\"{_jpeg_uri(before)}\" alt=\"input frame {t}\">"
        "<div class=\"line\"></div><span class=\"tag\" style=\"left:6px\">input</span>"
        "<span class=\"tag\" style=\"right:6px\">output</span>"
        f"<input type=\"range\" min=\"0\" max=\"100\" value=\"50\" aria-label=\"wipe frame {t}\"></div>"
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _chosen_frames(folder: Path, report: Report, count: int) -> tuple[list[int], dict[int, str]]:
    """Output frame indices to compare: evenly spaced, or for deblur runs the blurriest and the
    sharpest input frames (with a few evenly spaced ones when more are asked for)."""
    n = report.frames
    even = sorted({round(v) for v in np.linspace(0, n - 1, max(1, min(count, n)))})
    if report.mode != "deblur":
        return even, {}
    sharpness = _input_sharpness(report, n)
    if sharpness is None:
        return even, {}
    blurriest, sharpest = int(np.argmin(sharpness)), int(np.argmax(sharpness))
    why = {blurriest: " (blurriest input)", sharpest: " (sharpest input)"}
    chosen = list(dict.fromkeys([blurriest, sharpest] + [t for t in even if t not in why]))[: max(2, count)]
    return sorted(chosen), why


def _input_sharpness(report: Report, n: int) -> np.ndarray | None:
    from vidcam.sharpness import frame_sharpness

    io = report.config.get("io", {})
    try:
        clip = read_video(report.input, int(io.get("start_frame", 0)), n, SHARPNESS_SIDE)
    except (VidcamError, OSError):
        return None
    return frame_sharpness(clip.frames_float()) if clip.n_frames == n else None


def _input_frames(
    folder: Path, report: Report, chosen: Sequence[int], size: tuple[int, int]
) -> tuple[np.ndarray | None, str]:
    """The input frames the run's chosen output frames were made from, at the output's size, or
    None and why not. Taken from the input video, else from compare.mp4's left half."""
    io = report.config.get("io", {})
    start = int(io.get("start_frame", 0))
    try:
        frames = read_frames(report.input, [start + t for t in chosen], io.get("max_side"))
        return _to_size(_as_uint8(frames), size), ""
    except (VidcamError, OSError) as exc:
        problem = f"input video not readable ({exc})"
    compare = folder / run_folder.COMPARE_VIDEO
    if compare.is_file():
        side_by_side = read_frames(compare, chosen)
        return _to_size(side_by_side[:, :, : side_by_side.shape[2] // 2], size), problem + "; input frames from compare.mp4"
    return None, problem + "; showing the output only"


def _videos_section(folder: Path, posters: dict[str, str]) -> str:
    items = []
    for name, title in (
        (run_folder.SDR_VIDEO, "enhanced (SDR)"),
        (run_folder.COMPARE_VIDEO, "input | output"),
    ):
        if (folder / name).is_file():
            items.append(_video(name, title, posters.get(name)))
    links = []
    if (folder / run_folder.HDR10_VIDEO).is_file():
        links.append(
            f"<li><a href=\"{_e(run_folder.HDR10_VIDEO)}\">{_e(run_folder.HDR10_VIDEO)}</a>: HDR10 "
            "(HEVC Main10, PQ, BT.2020); plays as HDR in HDR-capable players</li>"
        )
    exrs = sorted((folder / run_folder.HDR_DIR).glob("*.exr")) if (folder / run_folder.HDR_DIR).is_dir() else []
    if exrs:
        first = f"{run_folder.HDR_DIR}/{exrs[0].name}"
        links.append(
            f"<li><a href=\"{_e(run_folder.HDR_DIR)}/\">{_e(run_folder.HDR_DIR)}/</a>: {len(exrs)} linear OpenEXR "
            f"frames (half float, Rec.709 primaries), e.g. <a href=\"{_e(first)}\">{_e(exrs[0].name)}</a></li>"
        )
    if (folder / run_folder.FRAMES_DIR).is_dir():
        links.append(f"<li><a href=\"{_e(run_folder.FRAMES_DIR)}/\">{_e(run_folder.FRAMES_DIR)}/</a>: PNG frames</li>")
    if not items and not links:
        return ""
    listed = f"<ul>{''.join(links)}</ul>" if links else ""
    return f"<h2>Videos</h2><div class=\"frames\">{''.join(items)}</div>{listed}"


def _video(name: str, title: str, poster: str | None = None) -> str:
    poster_attribute = f" poster=\"{poster}\"" if poster else ""
    return (
        f"<figure><video controls loop muted preload=\"metadata\" src=\"{_e(name)}\"{poster_attribute}></video>"
        f"<figcaption>{_e(title)}: <a href=\"{_e(name)}\">{_e(name)}</a></figcaption></figure>"
    )


def _camera_section(folder: Path, report: Report) -> str:
    parts = []
    if picture := _picture(folder / run_folder.CRF_PLOT, "learned camera response"):
        parts.append(f"<figure>{picture}<figcaption>response curves per channel (crf.png)</figcaption></figure>")
    if picture := _picture(folder / run_folder.PSF_PLOT, "learned blur kernels"):
        parts.append(
            f"<figure>{picture}<figcaption>learned blur kernels, 3×3 positions per row, one row per frame "
            "(psf.png)</figcaption></figure>"
        )
    exposures = _exposure_chart(report) if report.mode == "hdr" else ""
    if exposures:
        parts.append(exposures)
    return f"<h2>The learned camera</h2><div class=\"frames\">{''.join(parts)}</div>" if parts else ""


def _exposure_chart(report: Report) -> str:
    """Initial and learned exposure per frame as an inline SVG (relative to the shortest initial one)."""
    initial = np.asarray(report.exposures.get("initial") or [], np.float64)
    learned = np.asarray(report.exposures.get("learned") or [], np.float64)
    if initial.size == 0 or learned.size != initial.size or np.any(initial <= 0) or np.any(learned <= 0):
        return ""
    reference = initial.min()
    series = {"initial": np.log2(initial / reference), "learned": np.log2(learned / reference)}
    low = min(v.min() for v in series.values()) - 0.25
    high = max(v.max() for v in series.values()) + 0.25
    w, h, pad = 520, 220, 36
    n = initial.size

    def x(t: int) -> float:
        return pad + (w - 2 * pad) * (t / max(n - 1, 1))

    def y(v: float) -> float:
        return h - pad - (h - 2 * pad) * (v - low) / (high - low)

    # the initial exposures drawn wide and pale under the learned ones, so both show where they agree
    style = {"initial": ("#bbb", 5), "learned": ("#d0452b", 1.5)}
    lines = []
    for label, values in series.items():
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in enumerate(values))
        color, width = style[label]
        lines.append(f"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" points=\"{points}\"/>")
    ticks = []
    for ev in range(math.ceil(low), math.floor(high) + 1):
        ticks.append(
            f"<line x1=\"{pad}\" x2=\"{w - pad}\" y1=\"{y(ev):.1f}\" y2=\"{y(ev):.1f}\" stroke=\"#eee\"/>"
            f"<text x=\"{pad - 4}\" y=\"{y(ev) + 4:.1f}\" text-anchor=\"end\" font-size=\"11\">{ev:+d}</text>"
        )
    legend = (
        f"<text x=\"{w - pad}\" y=\"14\" text-anchor=\"end\" font-size=\"12\"><tspan fill=\"#999\">initial</tspan>"
        f" · <tspan fill=\"#d0452b\">learned</tspan></text>"
        f"<text x=\"{w / 2}\" y=\"{h - 6}\" text-anchor=\"middle\" font-size=\"11\">frame (0 – {n - 1})</text>"
        f"<text x=\"12\" y=\"{h / 2}\" font-size=\"11\" transform=\"rotate(-90 12 {h / 2})\" text-anchor=\"middle\">EV</text>"
    )
    svg = (
        f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" "
        f"style=\"background:#fff;border:1px solid #e4e4e4;max-width:100%\">{''.join(ticks)}{''.join(lines)}{legend}</svg>"
    )
    source = report.exposures.get("source", "?")
    ratio = report.exposures.get("ratio")
    ratio_text = f", ratio {float(ratio):.3g}" if isinstance(ratio, (int, float)) else ""
    return f"<figure>{svg}<figcaption>{_e(f'exposure per frame in EV ({source}{ratio_text})')}</figcaption></figure>"


def _training_section(folder: Path, report: Report) -> str:
    picture = _picture(folder / run_folder.LOSS_PLOT, "training losses")
    rows = [("steps", f"{report.steps}"), ("samples per second", f"{report.samples_per_second:,.0f}")]
    if report.threads:
        rows.append(("CPU threads", str(report.threads)))
    if report.cuda_max_memory_allocated:
        rows.append(("peak CUDA memory", f"{report.cuda_max_memory_allocated / 2**30:.2f} GiB"))
    rows += [
        (f"final {name}", f"{value:.4g}")
        for name, value in report.final_losses.items()
        if _is_number(value) and name not in ("step", "seconds")
    ]
    figure = f"<figure>{picture}<figcaption>loss curves (loss.png)</figcaption></figure>" if picture else ""
    return f"<h2>Training</h2><div class=\"frames\">{figure}<div>{_table(rows)}</div></div>"


def _windows_section(windows: dict | None) -> str:
    """A windowed run: its windows, the gain at each border and the seam flicker (vidcam.windows)."""
    if not windows:
        return ""
    spans = ", ".join(f"{w['start']}–{w['end'] - 1}" for w in windows["windows"])
    flicker, naive = windows["flicker"], windows["flicker_naive"]
    rows = [
        ("windows", f"{len(windows['windows'])}: frames {spans}"),
        ("gain at each border", ", ".join(f"{g:.3f}" for g in windows["border_gains"])),
        ("frame-to-frame change at borders / elsewhere", f"{flicker['border']:.3f} / {flicker['elsewhere']:.3f} (0–255)"),
        ("… with a hard cut, no alignment", f"{naive['border']:.3f} / {naive['elsewhere']:.3f}"),
        ("brightness change at borders / elsewhere", f"{flicker['brightness_border']:.3f} / {flicker['brightness_elsewhere']:.3f}"),
    ]
    return f"<h2>Temporal windows</h2>{_table(rows)}"


def _atlas_section(folder: Path) -> str:
    atlas_dir = folder / run_folder.ATLAS_DIR
    picture = _picture(atlas_dir / CONTACT_SHEET, "atlas contact sheet")
    if not picture:
        return ""
    links = [
        f"<a href=\"{_e(run_folder.ATLAS_DIR)}/{_e(path.name)}\">{_e(path.name)}</a>"
        for path in sorted(atlas_dir.iterdir())
        if path.suffix in (".png", ".exr", ".mp4", ".json") and path.name != CONTACT_SHEET
    ]
    return (
        f"<h2>Atlases and alphas</h2><figure>{picture}<figcaption>input frames, each layer's alpha and colour, "
        f"the atlases (atlas/contact_sheet.png)</figcaption></figure><p>{' · '.join(links)}</p>"
    )


def _fidelity_section(folder: Path, fidelity: Any) -> str:
    """The run's fidelity/confidence measurements when it has them: confidence.mp4 and
    ``report.json``'s ``fidelity`` (per-frame series drawn as a table, the rest listed)."""
    parts = []
    if (folder / run_folder.CONFIDENCE_VIDEO).is_file():
        parts.append(_video(run_folder.CONFIDENCE_VIDEO, "fidelity / confidence map"))
    if isinstance(fidelity, dict) and fidelity:
        scalars = [(str(key), _number_text(value)) for key, value in fidelity.items() if _is_number(value)]
        series = {str(key): value for key, value in fidelity.items() if _is_series(value)}
        other = {key: value for key, value in fidelity.items() if not _is_number(value) and not _is_series(value)}
        if scalars:
            parts.append(f"<div>{_table(scalars)}</div>")
        if series:
            n = max(len(values) for values in series.values())
            header = "<tr><th>frame</th>" + "".join(f"<th>{_e(key)}</th>" for key in series) + "</tr>"
            body = "".join(
                f"<tr><td class=\"n\">{t}</td>"
                + "".join(f"<td class=\"n\">{_number_text(values[t]) if t < len(values) else ''}</td>" for values in series.values())
                + "</tr>"
                for t in range(n)
            )
            parts.append(f"<details open><summary>per frame</summary><table>{header}{body}</table></details>")
        if other:
            parts.append(f"<pre>{_e(json.dumps(other, indent=2, default=str))}</pre>")
    elif fidelity:
        parts.append(f"<pre>{_e(json.dumps(fidelity, indent=2, default=str))}</pre>")
    return f"<h2>Fidelity</h2><div class=\"frames\">{''.join(parts)}</div>" if parts else ""


def _timings_section(report: Report) -> str:
    if not report.timings:
        return ""
    total = sum(report.timings.values())
    longest = max(report.timings.values()) or 1.0
    rows = "".join(
        f"<tr><td>{_e(stage)}</td><td class=\"n\">{seconds:.1f} s</td>"
        f"<td><span class=\"bar\" style=\"width:{240 * seconds / longest:.0f}px\"></span></td></tr>"
        for stage, seconds in report.timings.items()
    )
    return f"<h2>Timings</h2><table>{rows}<tr><th>total</th><td class=\"n\">{total:.1f} s</td><td></td></tr></table>"


def _plan_section(report: Report) -> str:
    plan = report.plan
    rows = [("mode", report.mode)]
    for key, label in (
        ("blur", "blur model"),
        ("operator", "SDR operator"),
        ("learn_exposure", "exposures learned"),
        ("exposure_source", "exposures from"),
        ("exposure_period", "exposure period (frames)"),
        ("exposure_ratio", "longest / shortest exposure"),
    ):
        if key in plan:
            rows.append((label, _number_text(plan[key])))
    if report.hdr_scale is not None:
        rows.append(("HDR scale before the operator", _number_text(report.hdr_scale)))
    for key, value in report.flow.items():
        rows.append((f"flow {key}", _number_text(value)))
    if report.audio:
        rows.append(("audio from", report.audio))
    table = _exposure_table(report)
    return f"<h2>The plan</h2><div class=\"frames\"><div>{_table(rows)}</div>{table}</div>"


def _exposure_table(report: Report) -> str:
    initial = report.exposures.get("initial") or []
    learned = report.exposures.get("learned") or []
    if not initial:
        return ""
    header = "<tr><th>frame</th><th>initial exposure</th><th>learned exposure</th></tr>"
    body = "".join(
        f"<tr><td class=\"n\">{t}</td><td class=\"n\">{_number_text(value)}</td>"
        f"<td class=\"n\">{_number_text(learned[t]) if t < len(learned) else ''}</td></tr>"
        for t, value in enumerate(initial)
    )
    return f"<details><summary>exposures per frame ({len(initial)})</summary><table>{header}{body}</table></details>"


def _settings_section(folder: Path, report: Report) -> str:
    config_file = folder / run_folder.CONFIG_NAME
    text = config_file.read_text() if config_file.is_file() else json.dumps(report.config, indent=2)
    return (
        f"<h2>Settings</h2><details><summary>the run's configuration ({_e(run_folder.CONFIG_NAME)})</summary>"
        f"<pre>{_e(text)}</pre></details>"
    )


# ----------------------------------------------------------------------------- helpers


def _render_settings(report: Report) -> RenderConfig:
    """The page's settings from the run's config; defaults for runs saved before they existed."""
    defaults = RenderConfig()
    saved = report.config.get("render", {}) if isinstance(report.config, dict) else {}
    frames = saved.get("report_frames", defaults.report_frames)
    side = saved.get("report_max_side", defaults.report_max_side)
    return RenderConfig(report_frames=max(1, int(frames)), report_max_side=max(16, int(side)))


def _exposure_caption(report: Report, t: int) -> str:
    if report.mode != "hdr":
        return ""
    initial, learned = report.exposures.get("initial") or [], report.exposures.get("learned") or []
    if t >= len(initial) or t >= len(learned):
        return ""
    return f" · exposure {_number_text(initial[t])} initial, {_number_text(learned[t])} learned"


def _picture(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img class=\"plot\" src=\"data:image/png;base64,{data}\" alt=\"{_e(alt)}\">"


def _jpeg_uri(rgb: np.ndarray) -> str:
    # full-resolution colour (4:4:4): the comparison is about detail, chroma included
    options = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), options)
    if not ok:
        raise VidcamError("cannot encode a frame for report.html")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _as_uint8(frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames
    scale = float(np.iinfo(frames.dtype).max)
    return np.clip(np.round(frames.astype(np.float32) * (255.0 / scale)), 0, 255).astype(np.uint8)


def _to_size(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames])


def _shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    height, width = frame.shape[:2]
    if max(height, width) <= max_side:
        return frame
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _table(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><td>{_e(key)}</td><td>{_e(value)}</td></tr>" for key, value in rows) + "</table>"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_series(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_number(v) or v is None for v in value)


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fps_text(fps: str) -> str:
    try:
        numerator, _, denominator = fps.partition("/")
        return f"{int(numerator) / int(denominator or 1):.3g}"
    except ValueError:
        return fps


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
