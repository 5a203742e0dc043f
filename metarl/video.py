"""Video frames for ``metarl record``: the text overlay, the memory side strip, MP4/GIF files.

Pure drawing on numpy RGB frames (Pillow), independent of envs and agents: the
overlay puts task, attempt, step and success on a dark band at the top; the
strip shows a trial's recent memory diagnostics (``metarl.diagnostics``) as
titled slots x time heatmaps with axes and a colour scale.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

STRIP_WIDTH = 192  # pixels of the memory side strip (a multiple of 16 keeps H.264 happy)
STRIP_HISTORY = 100  # env steps shown in the side strip
STRIP_KEYS = ("forget", "read_weights", "write_weights", "usage")  # panel order, first two present are drawn


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed
    except TypeError:  # Pillow < 10.1: the built-in bitmap font
        return ImageFont.load_default()


def overlay(frame: np.ndarray, lines: list[str], success: bool | None = None) -> np.ndarray:
    """Draw text lines on a dark band at the top; a green/grey border says success so far."""
    img = Image.fromarray(frame)
    h = img.height
    font_size = max(10, h // 30)
    draw = ImageDraw.Draw(img, "RGBA")
    band = (font_size + 4) * len(lines) + 6
    draw.rectangle([0, 0, img.width, band], fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        draw.text((6, 3 + i * (font_size + 4)), line, fill=(255, 255, 255, 255), font=_font(font_size))
    if success is not None:
        width = max(2, h // 120)
        colour = (40, 200, 60, 255) if success else (160, 160, 160, 255)
        draw.rectangle([0, 0, img.width - 1, h - 1], outline=colour, width=width)
    return np.asarray(img)


def _heat(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """(slots, time) values in [0, 1] -> (height, width, 3) uint8 heatmap (viridis), NEAREST-scaled."""
    from matplotlib import colormaps  # matplotlib is slow to import: only once a strip is drawn

    rgb = (colormaps["viridis"](np.clip(values, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)  # (N, T, 3)
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.NEAREST))


_STRIP_TITLES = {"forget": "forget gates", "read_weights": "read weights", "write_weights": "write weights",
                 "usage": "slot usage"}


def memory_strip(history: dict[str, list[np.ndarray]], height: int, width: int = STRIP_WIDTH,
                 episode_length: int | None = None) -> np.ndarray:
    """Side strip: up to two titled panels (memory slots x the last STRIP_HISTORY steps, newest on the
    right), each with a slot axis, a time axis and a colour scale.

    Forget gates are drawn on the absolute scale [0, 1]; weights and usage relative to their
    maximum in the window (a soft weighting over N slots is ~1/N everywhere). Attempt starts
    inside the window are white vertical lines. Empty history: a dark strip.
    """
    keys = [k for k in STRIP_KEYS if history.get(k)][:2]
    img = Image.new("RGB", (width, height), (24, 24, 24))
    if not keys:
        return np.asarray(img)
    draw = ImageDraw.Draw(img)
    fs = max(8, min(14, height // 36))
    font = _font(fs)
    left, right, bar = 3 * fs // 2 + 4, 2 * fs + 12, max(4, fs // 2)  # slot-axis labels | heatmap | colour bar, labels
    panel_h = height // len(keys)
    for p, key in enumerate(keys):
        steps = np.stack(history[key][-STRIP_HISTORY:])  # (t, N) or (t, heads, N)
        if steps.ndim == 3:
            steps = steps.mean(axis=1)  # average read heads -> (t, N)
        values = steps.T[::-1]  # (N, t): slots x time, slot 0 at the bottom
        top_value = 1.0 if key == "forget" else float(values.max())
        if key != "forget" and top_value > 0:
            values = values / top_value
        if values.shape[1] < STRIP_HISTORY:  # left-pad so time runs at a fixed speed
            pad = np.full((values.shape[0], STRIP_HISTORY - values.shape[1]), np.nan)
            values = np.concatenate([pad, values], axis=1)
        y0 = p * panel_h
        top, bottom = y0 + fs + 5, y0 + panel_h - fs - 6  # heatmap rows: below the title, above the time axis
        x1 = width - right
        if bottom - top < 4 or x1 - left < 8:
            continue
        heat = _heat(np.nan_to_num(values, nan=0.0), bottom - top, x1 - left).copy()
        heat[:, : max(0, (STRIP_HISTORY - len(history[key])) * (x1 - left) // STRIP_HISTORY)] = 24  # no steps yet
        img.paste(Image.fromarray(heat), (left, top))
        n = len(history[key])
        if episode_length:
            for start in range(0, n, episode_length):
                col = left + (STRIP_HISTORY - (n - start)) * (x1 - left) // STRIP_HISTORY
                if left <= col < x1:
                    draw.line([(col, top), (col, bottom - 1)], fill=(255, 255, 255))
        scale = "0-1" if key == "forget" else "/ max"
        draw.text((2, y0 + 2), f"{_STRIP_TITLES.get(key, key)} ({scale})", fill=(255, 255, 255), font=font)
        slots = values.shape[0]
        draw.text((2, top), str(slots - 1), fill=(200, 200, 200), font=font)  # slot axis: top and bottom slot
        draw.text((2, bottom - fs), "0", fill=(200, 200, 200), font=font)
        draw.text((2, (top + bottom) // 2 - fs // 2), "slot", fill=(150, 150, 150), font=_font(max(7, fs - 3)))
        draw.text((left, bottom + 2), f"-{STRIP_HISTORY}", fill=(200, 200, 200), font=font)  # time axis
        draw.text((x1 - 3 * fs // 2 - 4, bottom + 2), "now", fill=(200, 200, 200), font=font)
        ramp = _heat(np.linspace(1.0, 0.0, bottom - top)[:, None], bottom - top, bar)  # colour bar, high at the top
        img.paste(Image.fromarray(ramp), (x1 + 2, top))
        hi = "1" if key == "forget" else f"{top_value:.2f}"
        draw.text((x1 + bar + 4, top), hi, fill=(200, 200, 200), font=_font(max(7, fs - 2)))
        draw.text((x1 + bar + 4, bottom - fs), "0", fill=(200, 200, 200), font=_font(max(7, fs - 2)))
    return np.asarray(img)


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """MP4 via imageio-ffmpeg (H.264) or GIF via Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)
        return
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=16,
                            ffmpeg_log_level="error") as writer:
        for f in frames:
            writer.append_data(f)
