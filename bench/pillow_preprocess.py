"""Pillow's side of the decode bench (bench/decode.ts): ALBEF's preprocessing up to the resize,
Image.open -> exif_transpose -> convert('RGB') -> resize((size, size), BICUBIC), timed per image.

Reads lines "REPS SIZE PATH" on stdin and answers each with one JSON line: [[wall_ms, cpu_ms], ...].
Prints {"pillow": VERSION} first. Needs only Pillow (e.g. Debian's python3-pil).
"""
import io
import json
import sys
import time

import PIL
from PIL import Image, ImageOps


def preprocess(data, size):
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    return im.convert('RGB').resize((size, size), Image.BICUBIC)


print(json.dumps({'pillow': PIL.__version__}), flush=True)
cache = {}
for line in sys.stdin:
    reps, size, path = line.rstrip('\n').split(' ', 2)
    data = cache.setdefault(path, open(path, 'rb').read())
    times = []
    for _ in range(int(reps)):
        w, c = time.perf_counter(), time.process_time()
        preprocess(data, int(size))
        times.append([(time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000])
    print(json.dumps(times), flush=True)
