#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""tests/png-check.py PNG: is this screenshot of the status page not blank?

Decodes the PNG with the standard library alone (zlib; filters 0-4, 8-bit
RGB or RGBA) and checks that it has a real picture in it: many colours, and
pixels of the node's own blue (#2a7ae2, its dot and arc) and of the green
successor lines (#2a9d4a).  Prints what it found; exit 0 when all hold."""
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError("unsupported PNG: depth %d, colour type %d" % (depth, ctype))
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, out = bytearray(stride), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.extend(tuple(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, out


def near(p, rgb, tol=40):
    return all(abs(p[k] - rgb[k]) <= tol for k in range(3))


def main():
    width, height, px = pixels(sys.argv[1])
    colours = len(set(px))
    blue = sum(1 for p in px if near(p, (0x2a, 0x7a, 0xe2)))
    green = sum(1 for p in px if near(p, (0x2a, 0x9d, 0x4a)))
    print("%dx%d, %d colours, %d blue pixels, %d green pixels" % (width, height, colours, blue, green))
    ok = colours >= 16 and blue >= 200 and green >= 50
    return 0 if ok else 1


sys.exit(main())
