#!/usr/bin/python3
"""Writes the inputs of quanta's real-model test (graph/exec/models_test.go):
rendered text images for the PP-OCR detector, recognizer and direction
classifier, and synthetic speech-like audio for Silero VAD v5.

    /usr/bin/python3 scripts/ort/make_model_inputs.py [OUTDIR]

OUTDIR defaults to graph/exec/testdata/models. Needs numpy and PIL (Debian's
python3-numpy and python3-pil) and the DejaVu fonts (fonts-dejavu-core).
Everything is deterministic: fixed text, fixed seeds.

Each image file is an .npz keyed by the model's input name ("x"), so it can
be passed to `quanta bench --inputs` as it is. Images are rendered as uint8
RGB, turned into BGR (PaddleOCR reads images with OpenCV) and normalized in
float32 the way PaddleOCR's NormalizeImage does:
  det:      (x/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
  rec, cls: (x/255 - 0.5) / 0.5
The audio file holds "chunks" [N,512] (16 kHz), the zero initial "state"
[2,1,128] and "sr" (int64 16000); the test feeds the chunks one after the
other, carrying the state.

scripts/ort/run_reference.js then runs ONNX Runtime on these files.
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("graph", "exec", "testdata", "models")
os.makedirs(out, exist_ok=True)
FONTS = "/usr/share/fonts/truetype/dejavu/"


def font(name, size):
    return ImageFont.truetype(os.path.join(FONTS, name), size)


def to_bgr_chw(img):
    """uint8 RGB PIL image -> float32 [3,H,W] in BGR order, values 0..255."""
    a = np.asarray(img.convert("RGB"), dtype=np.uint8)[:, :, ::-1]
    return a.transpose(2, 0, 1).astype(np.float32)


def norm_det(chw):
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
    return ((chw / np.float32(255) - mean) / std).astype(np.float32)


def norm_rec(chw):
    return ((chw / np.float32(255) - np.float32(0.5)) / np.float32(0.5)).astype(np.float32)


def page():
    """A small page: off-white paper with a faint gradient, a heading and
    three lines of body text in dark ink, one line in blue."""
    w, h = 256, 128
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 246 - 10 * (x / w) - 6 * (y / h)
    rgb = np.stack([base, base - 2, base - 8], axis=-1).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    d = ImageDraw.Draw(img)
    d.text((12, 8), "Invoice 2024-117", font=font("DejaVuSans-Bold.ttf", 18), fill=(20, 20, 24))
    body = font("DejaVuSerif.ttf", 13)
    d.text((12, 42), "Quantity 12 at 3.50 each", font=body, fill=(30, 30, 30))
    d.text((12, 64), "Delivered to Berlin, May 9", font=body, fill=(30, 30, 30))
    d.text((12, 86), "Total due: 42.00 EUR", font=body, fill=(20, 40, 150))
    d.line((12, 110, 160, 110), fill=(90, 90, 90), width=1)
    return img


def line(text, w, h=48, size=30, fill=(16, 16, 16), bg=(236, 236, 232)):
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    f = font("DejaVuSans.ttf", size)
    l, t, r, b = d.textbbox((0, 0), text, font=f)
    d.text((4 - l, (h - (b - t)) // 2 - t), text, font=f, fill=fill)
    return img


def speech(n_chunks, sr=16000, seed=7):
    """Speech-like audio: silence with faint noise, then voiced syllables
    (a harmonic source with a gliding pitch, shaped by three formant
    resonators that move from vowel to vowel, under a syllabic envelope)
    with a fricative noise burst, then silence again."""
    rng = np.random.RandomState(seed)
    n = n_chunks * 512
    t = np.arange(n) / sr
    on, off = 0.12, 0.12 + 0.5
    # Pitch contour: rises from 110 Hz to 170 Hz and falls to 130 Hz.
    u = np.clip((t - on) / (off - on), 0, 1)
    f0 = 110 + 60 * np.sin(np.pi * u) ** 2 * (1 - 0.3 * u) + 3 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    src = np.zeros(n)
    for k in range(1, 30):
        src += np.sin(k * phase) / k * (k * f0 < sr / 2 - 500)
    # Formant targets of three vowels (a, i, u), interpolated over time.
    vowels = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240]], float)
    pos = np.clip(u * 3, 0, 2.999)
    i0 = pos.astype(int)
    frac = pos - i0
    i1 = np.minimum(i0 + 1, 2)
    formants = vowels[i0] * (1 - frac[:, None]) + vowels[i1] * frac[:, None]
    y = np.zeros(n)
    for j, bw in enumerate([90.0, 110.0, 170.0]):
        r = np.exp(-np.pi * bw / sr)
        a1 = -2 * r * np.cos(2 * np.pi * formants[:, j] / sr)
        a2 = r * r
        g = (1 - r) * [1.0, 0.6, 0.3][j]
        z1 = z2 = 0.0
        for i in range(n):
            v = g * src[i] - a1[i] * z1 - a2 * z2
            z2, z1 = z1, v
            y[i] += v
    # Syllabic envelope (about 4 syllables per second) inside the voiced span.
    env = np.where((t > on) & (t < off), 0.55 + 0.45 * np.sin(2 * np.pi * 4 * (t - on) - np.pi / 2) ** 2, 0.0)
    ramp = np.clip(np.minimum(t - on, off - t) / 0.02, 0, 1)
    y = y / np.abs(y).max() * env * ramp * 0.5
    # A fricative: band-limited noise burst after the voiced span.
    fr = (t > off + 0.02) & (t < off + 0.10)
    noise = rng.randn(n)
    hp = np.diff(noise, prepend=0.0)
    y += fr * hp * 0.05
    y += rng.randn(n) * 10 ** (-55 / 20)  # faint background noise
    return y.astype(np.float32).reshape(n_chunks, 512)


def save(name, **arrays):
    path = os.path.join(out, name + ".npz")
    np.savez_compressed(path, **arrays)
    print(path, os.path.getsize(path), {k: (v.dtype.str, v.shape) for k, v in arrays.items()})


save("ppocr_det_inputs", x=norm_det(to_bgr_chw(page()))[None])
save("ppocr_rec_inputs", x=norm_rec(to_bgr_chw(line("Berlin 42", 128, size=24)))[None])
up = line("Total due", 192, size=26)
save("ppocr_cls_inputs", x=np.stack([norm_rec(to_bgr_chw(up)), norm_rec(to_bgr_chw(up.rotate(180)))]))
save("silero_inputs", chunks=speech(30), state=np.zeros((2, 1, 128), np.float32), sr=np.array(16000, np.int64))
