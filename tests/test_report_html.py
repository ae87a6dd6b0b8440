"""report.html: the page a run writes, what it shows, its escaping, its command, and that a real
browser (headless Chromium) loads it without console errors and decodes every picture."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcam.cli import main
from vidcam.io.images import write_png
from vidcam.io.encode import write_sdr_video
from vidcam.io.video import read_video
from vidcam.pipeline import enhance
from vidcam.report_html import REPORT_HTML, write_report_html

RUN = {"render.fidelity": "off",  # the output must differ from the input for the wipe checks
       "train.steps": 40, "train.bootstrap_steps": 10, "render.compare": True}
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_SECONDS = 120


@pytest.fixture(scope="module")
def tiny_run(tiny_hdr_clip, tmp_path_factory, tiny_config) -> Path:
    """A real, tiny HDR run (its export writes report.html)."""
    outdir = tmp_path_factory.mktemp("runs") / "hdr"
    enhance(tiny_hdr_clip[0], outdir, tiny_config(RUN))
    return outdir


def fake_run(source: Path, target: Path, **report_changes) -> Path:
    """A copy of ``source``'s run folder with fields of its report.json replaced."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("cache", "checkpoint.pt"))
    report = json.loads((target / "report.json").read_text())
    report.update(report_changes)
    (target / "report.json").write_text(json.dumps(report))
    (target / REPORT_HTML).unlink()
    return target


def data_images(page: str) -> list[np.ndarray]:
    """Every inlined picture of the page, decoded, in page order."""
    pictures = []
    for encoded in re.findall(r'src="data:image/(?:png|jpeg);base64,([^"]+)"', page):
        data = np.frombuffer(base64.b64decode(encoded), np.uint8)
        pictures.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return pictures


def wipe_pairs(page: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(output, input) pictures of each wipe slider."""
    pairs = []
    for block in re.findall(r'<div class="wipe">(.*?)</div><span', page):
        after, before = data_images(block)
        pairs.append((after, before))
    return pairs


def test_run_writes_a_page_comparing_input_and_output(tiny_run, tiny_hdr_clip):
    page = (tiny_run / REPORT_HTML).read_text()
    n = json.loads((tiny_run / "report.json").read_text())["frames"]
    frames = [int(t) for t in re.findall(r"<figcaption>frame (\d+)", page)]
    assert frames == sorted({round(v) for v in np.linspace(0, n - 1, 4)})
    inputs = read_video(tiny_hdr_clip[0]).frames.astype(np.float64)
    outputs = read_video(tiny_run / "enhanced.mp4").frames.astype(np.float64)
    pairs = wipe_pairs(page)
    assert len(pairs) == len(frames)
    for t, (after, before) in zip(frames, pairs):
        assert before.shape == after.shape == inputs[t].shape
        # each side is its own frame (JPEG-close), not the next one (another exposure) or the other side
        assert np.abs(before - inputs[t]).mean() < min(4, np.abs(before - inputs[(t + 1) % n]).mean() / 3)
        assert np.abs(after - outputs[t]).mean() < min(4, np.abs(after - inputs[t]).mean() / 3)


def test_page_is_self_contained_and_shows_the_run(tiny_run):
    page = (tiny_run / REPORT_HTML).read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    for picture in ("crf.png", "loss.png"):
        assert f"({picture})" in page
    assert len(data_images(page)) == 2 * 4 + 2  # four wipes, response curves, loss curves
    assert 'src="enhanced.mp4" poster="data:image/jpeg' in page and 'src="compare.mp4" poster="data:image/jpeg' in page
    assert 'href="enhanced_hdr10.mp4"' in page and 'href="hdr/00000.exr"' in page
    report = json.loads((tiny_run / "report.json").read_text())
    for stage in report["timings"]:
        assert f"<td>{stage}</td>" in page
    settings = re.search(r"<summary>the run's configuration \(config.yaml\)</summary><pre>(.*?)</pre>", page, re.DOTALL)
    assert settings and "batch_size: 2048" in settings.group(1)
    assert "<svg" in page and "learned" in page  # the exposure chart
    assert "Fidelity" not in page and "Atlases and alphas" not in page  # this run has neither


def test_everything_from_the_run_is_escaped(tiny_run, tmp_path):
    hostile = "<script>alert('x')</script>&.mp4"
    folder = fake_run(tiny_run, tmp_path / "run", input=str(tmp_path / hostile), fidelity={"note": "<b>bold</b>"})
    (folder / "config.yaml").write_text("masks: </pre><img src=x onerror=alert(1)>\n")
    page = write_report_html(folder).read_text()
    assert "<script>alert" not in page and "<b>bold" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;.mp4" in page
    # the input video is gone: the input side comes from compare.mp4, and the page says so
    assert "input frames from compare.mp4" in page and len(wipe_pairs(page)) == 4


def test_without_input_or_compare_video_the_page_shows_the_output(tiny_run, tmp_path):
    folder = fake_run(tiny_run, tmp_path / "run", input=str(tmp_path / "moved.mp4"))
    (folder / "compare.mp4").unlink()
    page = write_report_html(folder).read_text()
    assert "showing the output only" in page and not wipe_pairs(page)
    assert len(re.findall(r'alt="output frame \d+"', page)) == 4


def test_deblur_page_compares_the_blurriest_and_sharpest_frames(tiny_run, tiny_blur_clip, tmp_path):
    clip_path, truth = tiny_blur_clip
    folder = fake_run(tiny_run, tmp_path / "run", input=str(clip_path), mode="deblur")
    write_png(folder / "psf.png", np.full((20, 30, 3), 200, np.uint8))
    page = write_report_html(folder).read_text()
    blurriest = int(re.search(r"frame (\d+) \(blurriest input\)", page).group(1))
    sharpest = int(re.search(r"frame (\d+) \(sharpest input\)", page).group(1))
    assert truth["blur_px"][blurriest] > truth["blur_px"][sharpest]
    assert "(psf.png)" in page


def test_fidelity_is_shown_when_the_run_has_it(tiny_run, tmp_path):
    folder = fake_run(tiny_run, tmp_path / "run", fidelity={"mean_psnr": 31.5, "psnr": [30.0, 33.25, 31.0]})
    write_sdr_video(folder / "confidence.mp4", np.zeros((2, 16, 16, 3), np.uint8), 24)
    page = write_report_html(folder).read_text()
    assert "<h2>Fidelity</h2>" in page and 'src="confidence.mp4"' in page
    assert "<td>mean_psnr</td><td>31.5</td>" in page and '<td class="n">33.25</td>' in page


def test_report_command(tiny_run, tmp_path, capsys):
    folder = fake_run(tiny_run, tmp_path / "run")
    assert main(["report", str(folder)]) == 0
    assert (folder / REPORT_HTML).is_file()
    for not_a_run in (tmp_path / "missing", tmp_path / "empty"):
        if not_a_run.name == "empty":
            not_a_run.mkdir()
        capsys.readouterr()
        assert main(["report", str(not_a_run)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("vidcam: error:") and "Traceback" not in err


def find_browser() -> str | None:
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def run_browser(browser: str, page: Path, workdir: Path, *mode: str) -> subprocess.CompletedProcess:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=5000", "--hide-scrollbars", "--window-size=1280,2000", *mode, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_SECONDS, cwd=workdir, check=False)


def console_lines(stderr: str) -> list[str]:
    """The page's console messages and uncaught errors (Chromium logs them as CONSOLE lines);
    report.html logs nothing, so any is a failure."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_page_renders_in_headless_chromium(tiny_run, tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it when it can)")
    page = tiny_run / REPORT_HTML
    dumped = run_browser(browser, page, tmp_path, "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert not console_lines(dumped.stderr), console_lines(dumped.stderr)
    body = re.search(r"<body([^>]*)>", dumped.stdout).group(1)
    assert 'data-images="ok"' in body  # every <img> decoded (naturalWidth > 0) after load
    assert f'data-image-count="{page.read_text().count("<img ")}"' in body
    assert dumped.stdout.count("clip-path: inset(0px 50% 0px 0px)") == 4  # the wipe script ran

    shot = tmp_path / "shot.png"
    captured = run_browser(browser, page, tmp_path, f"--screenshot={shot}")
    assert captured.returncode == 0 and not console_lines(captured.stderr), captured.stderr[-2000:]
    pixels = cv2.imread(str(shot))
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 10  # a page was drawn, not a blank canvas
