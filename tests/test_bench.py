"""tools/bench.py: the baselines end to end on a tiny clip (no vidcam run: that is the pipeline tests' job)."""

from __future__ import annotations

import json

import bench


def test_baselines_only_bench_writes_scores_and_ratios(tiny_hdr_clip, tmp_path, capsys):
    clip, _ = tiny_hdr_clip
    out = tmp_path / "bench"
    assert bench.main([str(clip), "--budgets", "none", "--no-preset", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["clips"][str(clip.resolve())]["rows"]
    assert [r["method"] for r in rows] == ["single-frame gamma 2.2", "classical merge"]
    assert all(r["status"] == "ok" and r["peak_rss_mib"] > 0 and "psnr_mu" in r["quality"] for r in rows)
    assert rows[1]["deltas"]["dPSNR-mu vs merge"] == 0.0
    assert "classical merge" in capsys.readouterr().out


def test_vidcam_row_takes_report_fields_and_compares():
    rows = [
        bench.Row("c.mp4", "blur", "blurry input", wall_s=1.0, quality={"psnr": 20.0, "ssim": 0.7}),
        bench.Row("c.mp4", "blur", "unsharp mask", wall_s=2.0, quality={"psnr": 21.0, "ssim": 0.8}),
        bench.Row("c.mp4", "blur", "vidcam fast", budget_s=30.0, wall_s=50.0, quality={"psnr": 25.0, "ssim": 0.9}),
    ]
    report = {"timings": {"train": 30.0, "render": 5.0}, "steps": 100, "samples_per_second": 9.0}
    bench.fill_from_report(rows[2], report)
    bench.add_comparisons(rows, "blur")
    assert rows[2].deltas["dPSNR vs input"] == 5.0 and rows[2].deltas["dPSNR vs unsharp"] == 4.0
    assert rows[2].wall_vs_reference == 25.0 and rows[2].cuda_peak_mib is None
    text = bench.clip_report(bench.Path("c.mp4"), "blur", rows)
    assert "n/a" in text and "25.0x" in text
