"""Write a YUV4MPEG2 (.y4m) video for Chromium's fake camera, without ffmpeg.

Chromium's --use-file-for-fake-video-capture plays the file in a loop as the camera. Format:
a text header, then per frame "FRAME\\n" and the I420 planes (full-size Y, then U and V at half
width and height).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def write_y4m(path: Path, frames: list[Image.Image], fps: int = 10) -> Path:
    w, h = frames[0].size
    if w % 2 or h % 2:
        raise ValueError("y4m 4:2:0 frames need an even width and height")
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for img in frames:
            y, cb, cr = img.convert("RGB").resize((w, h)).convert("YCbCr").split()
            f.write(b"FRAME\n")
            f.write(y.tobytes())
            f.write(cb.resize((w // 2, h // 2), Image.Resampling.BOX).tobytes())
            f.write(cr.resize((w // 2, h // 2), Image.Resampling.BOX).tobytes())
    return path
