#!/usr/bin/python3
"""Writes the evaluation data of quanta's quantized real-model test
(internal/modeleval): rendered text lines for the PP-OCRv4 recognizer,
rendered pages for the PP-OCRv4 detector, upright and rotated line crops for
the PP-OCR direction classifier (made from the recognizer's lines), and
synthetic speech-like audio for Silero VAD v5. Each set has a calibration part and a disjoint evaluation part.

    /usr/bin/python3 scripts/models/make_eval_data.py [OUTDIR]

OUTDIR defaults to internal/modeleval/testdata. Needs numpy, PIL (Debian's
python3-numpy and python3-pil), the DejaVu fonts (fonts-dejavu-core) and
WenQuanYi Micro Hei for the Chinese lines (fonts-wqy-microhei). Everything
is deterministic: fixed word lists, fixed seeds; the script checks that every
character of every label is in PaddleOCR's dictionary (ppocr_keys_v1.txt,
found at ../shared/models/ppocr or the path in $PPOCR_KEYS).

Images are stored as they would be decoded from files: uint8 RGB, [N,H,W,3].
The Go side turns them into BGR and normalizes them the way PaddleOCR does
(internal/modeleval/input.go). Files:

  rec.npz   images [N,48,320,3] uint8: each line already resized to height 48
            at its aspect ratio (PaddleOCR's resize_norm_img with imgW 320),
            left-aligned; columns from widths[i] on are zero and are padded
            with 0 after normalization, as PaddleOCR pads;
            widths [N] int64; the label of line i is line i of rec_labels.txt.
            Lines 0-63 are the calibration set, the rest the evaluation set.
  det.npz   images [N,256,256,3] uint8 pages; 0-15 calibration, the rest
            evaluation.
  (the direction classifier's crops are made from rec's lines by the Go
  side: each line upright and rotated by 180 degrees, resized into 48 x 192
  as PaddleOCR does; lines 0-31 give its calibration set, lines 64-175 its
  evaluation set.)
  silero.npz  calib [C,L] int16 and eval [E,L] int16: clips of 16 kHz audio
            whose length L is a multiple of 512; the Go side feeds them in
            512-sample chunks carrying the model's state within each clip.
"""
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("internal", "modeleval", "testdata")
os.makedirs(out, exist_ok=True)
DEJAVU = "/usr/share/fonts/truetype/dejavu/"
WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
KEYS = os.environ.get("PPOCR_KEYS", os.path.join("..", "shared", "models", "ppocr", "ppocr_keys_v1.txt"))

LATIN_FONTS = [
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansCondensed-Bold.ttf",
]

WORDS = """invoice total amount paid date order number customer address phone
delivery payment account balance credit debit bank transfer reference receipt
item quantity price unit tax discount subtotal shipping note please thank you
station platform train ticket departure arrival gate seat class return single
coffee tea water bread butter cheese apple orange lemon sugar milk rice
open closed monday tuesday friday sunday morning evening hours daily
street road avenue square park river bridge market garden north south
meeting room floor building office library museum hospital school hotel
welcome entrance exit push pull caution wet floor no parking emergency
model engine quantized integer float layer input output signal window
Berlin Paris London Madrid Vienna Prague Lisbon Dublin Oslo Rome
January March April June August October December Street Road Hall""".split()

ZH_WORDS = """发票 合计 北京 上海 日期 金额 总价 数量 单价 客户 地址 电话 公司
名称 时间 订单 编号 商品 小计 银行 账户 备注 收款人 广州 深圳 中文 识别
模型 测试 欢迎 光临 出口 入口 停车场 超市 餐厅 医院 学校 图书馆 火车站
星期一 星期五 营业 时间 价格 优惠 会员 服务 中心 人民 路 号 楼 室 元""".split()

PUNCT_TOKENS = ["-", "/", ":", "&", "#", "(", ")", "+", "%", "!", "?", ",", ".", "@", "*"]


def load_keys():
    with open(KEYS, encoding="utf-8") as f:
        keys = set(f.read().split("\n"))
    keys.add(" ")
    return keys


def font(name, size):
    if name == "wqy":
        return ImageFont.truetype(WQY, size, index=0)
    return ImageFont.truetype(os.path.join(DEJAVU, name), size)


def number_token(rng):
    k = rng.randint(9)
    if k == 0:
        return "%d.%02d" % (rng.randint(1, 999), rng.randint(100))
    if k == 1:
        return "%04d-%02d-%02d" % (rng.randint(1990, 2031), rng.randint(1, 13), rng.randint(1, 29))
    if k == 2:
        return "%02d:%02d" % (rng.randint(24), rng.randint(60))
    if k == 3:
        return "%d%%" % rng.randint(1, 100)
    if k == 4:
        return "+%d %d %d" % (rng.randint(1, 99), rng.randint(10, 999), rng.randint(100000, 9999999))
    if k == 5:
        return "%s-%d" % ("".join(chr(65 + rng.randint(26)) for _ in range(2)), rng.randint(100, 99999))
    if k == 6:
        return "No.%d" % rng.randint(1, 500)
    if k == 7:
        return "$%d" % rng.randint(1, 5000)
    return str(rng.randint(0, 100000))


def word_token(rng):
    w = WORDS[rng.randint(len(WORDS))]
    c = rng.randint(6)
    if c == 0:
        w = w.capitalize()
    elif c == 1:
        w = w.upper()
    if rng.rand() < 0.15:
        w += [",", ".", ":", ";", "!", "?"][rng.randint(6)]
    return w


def latin_line(rng, max_chars):
    toks = []
    n = rng.randint(1, 6)
    for _ in range(n):
        r = rng.rand()
        if r < 0.6:
            toks.append(word_token(rng))
        elif r < 0.9:
            toks.append(number_token(rng))
        else:
            toks.append(PUNCT_TOKENS[rng.randint(len(PUNCT_TOKENS))])
    s = " ".join(toks)
    return s[:max_chars].strip()


def zh_line(rng):
    toks = [ZH_WORDS[rng.randint(len(ZH_WORDS))] for _ in range(rng.randint(1, 4))]
    s = "".join(toks)
    r = rng.rand()
    if r < 0.35:
        s += "：" if rng.rand() < 0.5 else ":"
        s += number_token(rng)
    elif r < 0.55:
        s = number_token(rng) + s
    elif r < 0.7:
        s += " " + word_token(rng)
    return s


def render_line(rng, text, fname, size, ink, paper, noise, H=None):
    """Renders text with a small random margin; returns RGB uint8. With H
    the canvas is H pixels high and the text is centred with some jitter
    (a crop at its native scale); otherwise the crop is tight."""
    f = font(fname, size)
    probe = ImageDraw.Draw(Image.new("RGB", (8, 8)))
    l, t, r, b = probe.textbbox((0, 0), text, font=f)
    mx = rng.randint(2, 9)
    if H is None:
        my = rng.randint(2, 8)
        h = max(b - t, size * 3 // 4) + 2 * my
    else:
        h = H
    w = r - l + 2 * mx
    y0 = (h - (b - t)) // 2 - t + (rng.randint(-3, 4) if H is not None else 0)
    img = Image.new("RGB", (w, h), paper)
    ImageDraw.Draw(img).text((mx - l, y0), text, font=f, fill=ink)
    a = np.asarray(img, dtype=np.float32)
    if rng.rand() < 0.3:  # a faint lighting gradient across the line
        a = a + np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * rng.uniform(-8, 8)
    if noise > 0:
        a = a + rng.randn(*a.shape[:2], 1).astype(np.float32) * noise
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def resize_to_height(a, H, W):
    """PaddleOCR's resize_norm_img geometry: height H at the aspect ratio,
    width ceil(H*w/h) capped at W, left-aligned in an H x W zero canvas."""
    h, w = a.shape[:2]
    rw = min(W, int(math.ceil(H * w / h)))
    if (h, w) != (H, rw):
        a = np.asarray(Image.fromarray(a).resize((rw, H), Image.BILINEAR))
    canvas = np.zeros((H, W, 3), np.uint8)
    canvas[:, :rw] = a
    return canvas, rw


def line_crop(rng, text, fname, W, size_lo, size_hi, noise):
    """A line crop of height 48 for a W-wide model input, or None when the
    text would not fit at its aspect ratio. Three in four crops are
    rendered at their native scale (size_lo..size_hi pixels on a 48-pixel
    canvas); the others tightly at a larger size and resized down, as
    PaddleOCR resizes a detected box."""
    ink, paper = ink_paper(rng)
    if rng.rand() < 0.75:
        a = render_line(rng, text, fname, int(rng.randint(size_lo, size_hi + 1)), ink, paper, noise, H=48)
    else:
        a = render_line(rng, text, fname, int(rng.randint(40, 61)), ink, paper, noise)
    h, w = a.shape[:2]
    if 48.0 * w / h > W:
        return None
    return resize_to_height(a, 48, W)


def make_lines(rng, keys, n, W, zh_frac):
    """n rendered lines in H=48 x W crops, with their labels."""
    imgs, widths, labels = [], [], []
    while len(imgs) < n:
        zh = rng.rand() < zh_frac
        text = zh_line(rng) if zh else latin_line(rng, 30)
        if not text or "  " in text or not any(c.isalnum() for c in text):
            continue
        bad = [c for c in text if c not in keys]
        if bad:
            raise SystemExit("label %r has characters outside the dictionary: %r" % (text, bad))
        fname = "wqy" if zh else LATIN_FONTS[rng.randint(len(LATIN_FONTS))]
        res = line_crop(rng, text, fname, W, 20, 34, noise=rng.choice([0.0] * 8 + [2.0, 3.0]))
        if res is None:
            continue
        imgs.append(res[0])
        widths.append(res[1])
        labels.append(text)
    return np.stack(imgs), np.array(widths, np.int64), labels


def ink_paper(rng):
    """Ink and paper colours: mostly dark ink, some blue or red, on light
    paper with a slight tint."""
    r = rng.rand()
    if r < 0.7:
        ink = tuple(int(v) for v in rng.randint(0, 60, 3))
    elif r < 0.85:
        ink = (int(rng.randint(10, 50)), int(rng.randint(20, 70)), int(rng.randint(120, 190)))
    else:
        ink = (int(rng.randint(130, 190)), int(rng.randint(10, 40)), int(rng.randint(10, 40)))
    base = rng.randint(205, 250)
    paper = tuple(int(base - rng.randint(0, 12)) for _ in range(3))
    return ink, paper


def make_page(rng, keys, S=256):
    """A page of S x S pixels: tinted paper with a lighting gradient, 3-8
    lines of text in one or two columns at several sizes, sometimes a
    heading, a rule or a box, some lines in Chinese."""
    y, x = np.mgrid[0:S, 0:S].astype(np.float32)
    base = rng.uniform(215, 250)
    tint = rng.uniform(-10, 4, 3)
    gx, gy = rng.uniform(-14, 14), rng.uniform(-10, 10)
    rgb = np.stack([base + tint[c] + gx * x / S + gy * y / S for c in range(3)], axis=-1)
    img = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    two_cols = rng.rand() < 0.3
    top = int(rng.randint(4, 20))
    if rng.rand() < 0.6:
        f = font(LATIN_FONTS[rng.choice([1, 5, 6])], int(rng.randint(18, 27)))
        text = latin_line(rng, 16) or "Report"
        while d.textlength(text, font=f) > S - 60:
            text = text[:-1].rstrip()
        d.text((int(rng.randint(6, 40)), top), text, font=f, fill=(15, 15, 20))
        top += int(rng.randint(30, 40))
    cols = [(8, S // 2 - 6), (S // 2 + 4, S - 6)] if two_cols else [(8 + int(rng.randint(0, 20)), S - 6)]
    for ci, (x0, x1) in enumerate(cols):
        yy = top
        while True:
            size = int(rng.randint(11, 22))
            zh = rng.rand() < 0.25
            fname = "wqy" if zh else LATIN_FONTS[rng.randint(len(LATIN_FONTS))]
            f = font(fname, size)
            text = zh_line(rng) if zh else latin_line(rng, 30)
            if not text:
                continue
            while text and d.textlength(text, font=f) > x1 - x0 - 10:
                text = text[:-1].rstrip()
            if yy + size * 1.4 > S - 6:
                break
            ink, _ = ink_paper(rng)
            if text:
                d.text((x0 + int(rng.randint(0, 10)), yy), text, font=f, fill=ink)
            yy += int(size * rng.uniform(1.5, 2.4))
            if rng.rand() < 0.1 and yy < S - 20:
                d.line((x0, yy - 4, x1 - int(rng.randint(0, 60)), yy - 4), fill=(100, 100, 100), width=1)
    if rng.rand() < 0.25:
        x0, y0 = int(rng.randint(4, 60)), int(rng.randint(60, 150))
        d.rectangle((x0, y0, x0 + int(rng.randint(80, 180)), y0 + int(rng.randint(40, 90))), outline=(70, 70, 80), width=1)
    a = np.asarray(img, np.float32)
    if rng.rand() < 0.15:
        a = a + rng.randn(S, S, 1).astype(np.float32) * 2.0
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


# ---- audio ----

SR = 16000


def formant_filter(src, formants, bws, gains):
    """Three time-varying two-pole resonators in parallel (per-sample loop)."""
    n = len(src)
    y = np.zeros(n)
    for j in range(3):
        r = math.exp(-math.pi * bws[j] / SR)
        a1 = -2 * r * np.cos(2 * np.pi * formants[:, j] / SR)
        a2 = r * r
        g = (1 - r) * gains[j]
        z1 = z2 = 0.0
        yj = np.empty(n)
        for i in range(n):
            v = g * src[i] - a1[i] * z1 - a2 * z2
            z2 = z1
            z1 = v
            yj[i] = v
        y += yj
    return y


VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                   [530, 1840, 2480], [570, 840, 2410], [440, 1020, 2240]], float)


def utterance(rng, n):
    """n samples of voiced speech: syllables with a pitch contour, moving
    formants, a syllabic envelope, fricatives between some syllables."""
    t = np.arange(n) / SR
    f0base = rng.choice([95.0, 120.0, 180.0, 220.0]) * rng.uniform(0.9, 1.1)
    u = t / max(t[-1], 1e-3)
    f0 = f0base * (1 + 0.25 * np.sin(np.pi * u * rng.uniform(0.8, 2.2) + rng.uniform(0, 3)) - 0.15 * u)
    f0 += 3 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    src = np.zeros(n)
    for k in range(1, 40):
        src += np.sin(k * phase) / k * (k * f0 < SR / 2 - 500)
    rate = rng.uniform(3.0, 5.5)  # syllables per second
    nsyl = max(2, int(t[-1] * rate) + 1)
    seq = VOWELS[rng.randint(len(VOWELS), size=nsyl + 1)]
    pos = np.clip(u * nsyl, 0, nsyl - 1e-6)
    i0 = pos.astype(int)
    frac = pos - i0
    formants = seq[i0] * (1 - frac[:, None]) + seq[i0 + 1] * frac[:, None]
    y = formant_filter(src, formants, [80 + 40 * rng.rand(), 100 + 40 * rng.rand(), 150 + 60 * rng.rand()], [1.0, 0.6, 0.3])
    env = 0.35 + 0.65 * np.sin(np.pi * (pos % 1.0)) ** 1.5
    ramp = np.clip(np.minimum(t, t[-1] - t) / 0.02, 0, 1)
    y = y / (np.abs(y).max() + 1e-9) * env * ramp
    # Fricatives: bursts of high-passed noise at a few syllable boundaries.
    noise = np.diff(rng.randn(n), prepend=0.0)
    for s in range(1, nsyl):
        if rng.rand() < 0.35:
            c = int(s / nsyl * n)
            w = int(SR * rng.uniform(0.03, 0.08))
            a, b = max(0, c - w // 2), min(n, c + w // 2)
            y[a:b] = y[a:b] * 0.2 + noise[a:b] * 0.15 * np.hanning(b - a)
    return y


def background(rng, n, kind, level_db):
    if kind == "white":
        b = rng.randn(n)
    elif kind == "pink":
        w = rng.randn(n)
        b = np.zeros(n)
        acc = 0.0
        for i in range(n):  # leaky integrator: a brownish/pink tilt
            acc = 0.98 * acc + w[i]
            b[i] = acc
        b = b / (b.std() + 1e-9)
    else:  # mains hum with harmonics
        tt = np.arange(n) / SR
        b = sum(np.sin(2 * np.pi * 50 * k * tt + k) / k for k in range(1, 6))
        b = b / b.std()
    return b * 10 ** (level_db / 20)


def clip(rng, n_chunks):
    """A clip of n_chunks*512 samples: silence and utterances of 0.3-1.6 s
    at varying levels, over background noise of a random kind and level."""
    n = n_chunks * 512
    y = np.zeros(n)
    pos = int(SR * rng.uniform(0.1, 0.6))
    while pos < n - SR // 5:
        dur = min(int(SR * rng.uniform(0.3, 1.6)), n - pos)
        level = 10 ** (rng.uniform(-26, -6) / 20)
        y[pos:pos + dur] += utterance(rng, dur) * level
        pos += dur + int(SR * rng.uniform(0.2, 1.0))
    kind = ["white", "pink", "hum"][rng.randint(3)]
    y += background(rng, n, kind, rng.uniform(-60, -36))
    return np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)


def save(name, **arrays):
    path = os.path.join(out, name + ".npz")
    np.savez_compressed(path, **arrays)
    print(path, os.path.getsize(path), {k: (v.dtype.str, v.shape) for k, v in arrays.items()})


def main():
    keys = load_keys()
    rng = np.random.RandomState(20240611)
    imgs, widths, labels = make_lines(rng, keys, 64 + 112, 320, zh_frac=0.2)
    save("rec", images=imgs, widths=widths)
    with open(os.path.join(out, "rec_labels.txt"), "w", encoding="utf-8") as f:
        for s in labels:
            f.write(s + "\n")
    rng = np.random.RandomState(20240612)
    pages = np.stack([make_page(rng, keys) for _ in range(16 + 16)])
    save("det", images=pages)
    rng = np.random.RandomState(20240614)
    calib = np.stack([clip(rng, 32) for _ in range(2)])
    ev = np.stack([clip(rng, 80) for _ in range(8)])
    save("silero", calib=calib, eval=ev)


if __name__ == "__main__":
    main()
