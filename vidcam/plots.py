"""Small line plots and image grids drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

import math

import cv2
import numpy as np

PLOT_SIZE = (640, 400)  # width, height
MARGIN = (70, 20, 20, 50)  # left, top, right, bottom
PALETTE = [(220, 50, 47), (38, 139, 60), (38, 100, 210), (203, 75, 22), (108, 113, 196), (42, 161, 152), (133, 153, 0)]
FONT = cv2.FONT_HERSHEY_SIMPLEX


def line_plot(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    colors: dict[str, tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """A white RGB uint8 image with one polyline per named (x, y) series, axes and a legend."""
    width, height = PLOT_SIZE
    left, top, right, bottom = MARGIN
    image = np.full((height, width, 3), 255, np.uint8)
    prepared = {}
    for name, (x, y) in series.items():
        x, y = np.asarray(x, float), np.asarray(y, float)
        keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log_y else True)
        if keep.sum() >= 2:
            prepared[name] = (x[keep], np.log10(y[keep]) if log_y else y[keep])
    cv2.putText(image, title, (left, 15), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not prepared:
        return image
    xs = np.concatenate([x for x, _ in prepared.values()])
    ys = np.concatenate([y for _, y in prepared.values()])
    x0, x1 = xs.min(), xs.max() if xs.max() > xs.min() else xs.min() + 1
    y0, y1 = ys.min(), ys.max() if ys.max() > ys.min() else ys.min() + 1

    def to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom - 10)
        return np.stack([px, py], -1).round().astype(np.int32)

    cv2.rectangle(image, (left, top + 10), (width - right, height - bottom), (0, 0, 0), 1)
    for frac in np.linspace(0, 1, 5):
        yv, xv = y0 + frac * (y1 - y0), x0 + frac * (x1 - x0)
        py, px = to_px(np.array([x0]), np.array([yv]))[0][1], to_px(np.array([xv]), np.array([y0]))[0][0]
        label_y = f"{10**yv:.2g}" if log_y else f"{yv:.3g}"
        cv2.putText(image, label_y, (4, int(py) + 4), FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
        cv2.putText(image, f"{xv:.3g}", (int(px) - 15, height - bottom + 15), FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(image, xlabel, (width // 2 - 40, height - 12), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, ylabel + (" (log)" if log_y else ""), (4, top + 5), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (name, (x, y)) in enumerate(prepared.items()):
        color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        cv2.polylines(image, [to_px(x, y)], False, color, 2, cv2.LINE_AA)
        cv2.putText(image, name, (width - right - 130, top + 28 + 16 * i), FONT, 0.45, color, 1, cv2.LINE_AA)
    return image


def image_grid(images: list[np.ndarray], columns: int, labels: list[str] | None = None, pad: int = 4) -> np.ndarray:
    """Tile equally sized RGB uint8 images, each optionally captioned."""
    h, w = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        tile = img if img.ndim == 3 else np.repeat(img[..., None], 3, -1)
        grid[y : y + h, x : x + w] = tile[..., :3]
        if labels:
            cv2.putText(grid, labels[i], (x + 3, y + 14), FONT, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return grid
