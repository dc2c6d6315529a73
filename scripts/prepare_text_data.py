#!/usr/bin/env python3
"""Turns a text into a byte-level token file for moe-run (one u16 token per
byte, vocabulary 256).

models/data/kjv.u16.bin was made with:

    apt-get install bible-kjv      # the King James Bible, public domain
    bible gen1:1-rev22:21 > kjv.txt
    scripts/prepare_text_data.py kjv.txt models/data/kjv.u16.bin --bytes 1048576
"""
import argparse
import struct

ap = argparse.ArgumentParser()
ap.add_argument("text")
ap.add_argument("out")
ap.add_argument("--bytes", type=int, default=0, help="keep only the first N bytes")
args = ap.parse_args()
data = open(args.text, "rb").read()
if args.bytes:
    data = data[:args.bytes]
with open(args.out, "wb") as f:
    f.write(struct.pack(f"<{len(data)}H", *data))
print(f"{args.out}: {len(data)} tokens")
