"""Small seed inputs for the fuzz targets (standard library only): PNGs of several colour types, .npy arrays,
model descriptions. Real files (photos, ONNX node tests, shared descriptions) are added by the Makefile."""
import os, struct, sys, zlib

out = sys.argv[1]

def png(path, width, height, colour_type, bit_depth=8, interlace=0, palette=None):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = bytes((x * 37 + y * 11) % 256 for y in range(1) for x in range(width * channels * bit_depth // 8))
    raw = b"".join(b"\x00" + row for _ in range(height))
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace))
    if palette:
        data += chunk(b"PLTE", palette)
    data += chunk(b"tEXt", b"Software\x00dream") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)

def npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload)

os.makedirs(f"{out}/png", exist_ok=True)
os.makedirs(f"{out}/npy", exist_ok=True)
os.makedirs(f"{out}/description", exist_ok=True)
png(f"{out}/png/rgb.png", 5, 3, 2)
png(f"{out}/png/grey16.png", 4, 4, 0, bit_depth=16)
png(f"{out}/png/rgba.png", 3, 3, 6)
png(f"{out}/png/palette.png", 4, 2, 3, palette=bytes(range(12)))
npy(f"{out}/npy/f4.npy", "<f4", "(1, 3, 2, 2)", struct.pack("<12f", *range(12)))
npy(f"{out}/npy/i8.npy", "<i8", "(3,)", struct.pack("<3q", 1, -2, 3))
npy(f"{out}/npy/f8.npy", "<f8", "(2,)", struct.pack("<2d", 0.5, -1))
open(f"{out}/description/small.json", "w").write(
    '{"input": {"channel_order": "BGR", "pixel_range": [0, 255], "mean": [104, 117, 123], "std": [1, 1, 1],'
    ' "default_size": [224, 224], "resize_shorter": 256, "crop": [224, 224]}, "labels": "labels.txt",'
    ' "deepdream_layers": ["conv2"], "outputs": {"prob": [1, 1000]}}')
