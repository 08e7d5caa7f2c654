#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/<target>/.

Standard library only, deterministic (gzip without a timestamp), so running it again gives
the same bytes. Each target gets a few valid files and a few interesting invalid ones (the
bad-input cases of docs/bad-input.md). Inputs of fixed findings are moved into the same
directories from tests/fuzz/findings/ (crash-<what>, ...) and are not touched here.

    python3 tests/fuzz/make_corpus.py
"""
import base64
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- IDX -----------------------------------------------------------------------------------
def idx(dims, payload=None, type_code=0x08, magic=b"\x00\x00"):
    count = 1
    for d in dims:
        count *= d
    if payload is None:
        payload = bytes((i * 37) & 0xFF for i in range(count))
    return magic + bytes([type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_corpus():
    labels = idx([6], bytes([0, 1, 2, 3, 4, 9]))
    images = idx([2, 5, 4])
    put("idx", "valid-labels-1d", labels)
    put("idx", "valid-images-3d", images)
    put("idx", "valid-4d", idx([1, 2, 2, 3]))
    put("idx", "valid-images-3d.gz", gz(images))
    put("idx", "valid-two-members.gz", gz(images[:13]) + gz(images[13:]))
    put("idx", "bad-truncated-payload", images[:-7])
    put("idx", "bad-truncated-header", images[:9])
    put("idx", "bad-extra-bytes", images + b"\x00\x00\x00")
    put("idx", "bad-magic", b"\x01\x00" + images[2:])
    put("idx", "bad-type-float32", idx([2, 2], bytes(16), type_code=0x0D))
    put("idx", "bad-zero-dimension", idx([3, 0, 4], b""))
    put("idx", "bad-five-dimensions", idx([1, 1, 1, 1, 1], b"\x07"))
    put("idx", "bad-huge-dimensions", idx([0xFFFFFFFF] * 4, b"\x01\x02\x03"))
    compressed = gz(images)
    put("idx", "bad-gzip-truncated", compressed[: len(compressed) // 2])
    corrupt = bytearray(compressed)
    corrupt[12] ^= 0xFF
    put("idx", "bad-gzip-corrupt", bytes(corrupt))
    put("idx", "bad-gzip-trailing-garbage", compressed + b"garbage")


# ---- safetensors ---------------------------------------------------------------------------
# The fuzz target's model: "0.weight" [3, 2], "0.bias" [3], "1.weight" [2, 3].
MODEL = [("0.weight", [3, 2]), ("0.bias", [3]), ("1.weight", [2, 3])]


def floats(count, start=0.0):
    return struct.pack("<%df" % count, *[start + 0.25 * i for i in range(count)])


def safetensors(header, data, pad=True, length=None):
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def layout(tensors, metadata=None):
    header, data, offset = {}, b"", 0
    if metadata:
        header["__metadata__"] = metadata
    for name, shape in tensors:
        count = 1
        for d in shape:
            count *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * count]}
        data += floats(count, offset / 4)
        offset += 4 * count
    return header, data


def safetensors_corpus():
    header, data = layout(MODEL, {"model": "fuzz", "dataset": "none"})
    put("safetensors", "valid-model", safetensors(header, data))
    put("safetensors", "valid-empty", safetensors({}, b""))
    put("safetensors", "valid-scalar-and-empty-tensor",
        safetensors(*layout([("scalar", []), ("nothing", [0, 5])])))
    wrong_shape, wrong_shape_data = layout([("0.weight", [2, 3]), ("0.bias", [3]), ("1.weight", [2, 3])])
    put("safetensors", "valid-file-shape-not-model", safetensors(wrong_shape, wrong_shape_data))
    missing, missing_data = layout(MODEL[:2])
    put("safetensors", "valid-file-tensor-missing", safetensors(missing, missing_data))
    extra, extra_data = layout(MODEL + [("2.weight", [1])])
    put("safetensors", "valid-file-unexpected-tensor", safetensors(extra, extra_data))

    good = safetensors(header, data)
    put("safetensors", "bad-shorter-than-length", good[:5])
    put("safetensors", "bad-header-length-past-end", safetensors(header, data, length=len(good)))
    put("safetensors", "bad-header-length-absurd", struct.pack("<Q", 1 << 40) + b"{}")
    put("safetensors", "bad-truncated-data", good[:-4])
    past = json.loads(json.dumps(header))
    past["1.weight"]["data_offsets"] = [48, 48 + 4 * 6 + 400]
    put("safetensors", "bad-offsets-past-end", safetensors(past, data))
    f16 = json.loads(json.dumps(header))
    f16["0.bias"]["dtype"] = "F16"
    put("safetensors", "bad-dtype-f16", safetensors(f16, data))
    text = json.dumps(header, separators=(",", ":")).encode()
    duplicate = text[:-1] + b',"0.bias":' + json.dumps(header["0.bias"], separators=(",", ":")).encode() + b"}"
    put("safetensors", "bad-duplicate-name", safetensors(duplicate, data))
    overlap = json.loads(json.dumps(header))
    overlap["0.bias"]["data_offsets"] = [0, 12]
    put("safetensors", "bad-overlap", safetensors(overlap, data))
    put("safetensors", "bad-not-json", safetensors(b"{\"a\":", b""))
    put("safetensors", "bad-nul-in-header", safetensors(b"{}\x00\x00\x00\x00\x00\x00", b""))
    put("safetensors", "bad-deep-nesting", safetensors(b"[[[[[[[[]]]]]]]]", b""))
    negative = json.loads(json.dumps(header))
    negative["0.bias"]["shape"] = [-3]
    put("safetensors", "bad-negative-dimension", safetensors(negative, data))
    put("safetensors", "bad-metadata-not-string", safetensors({"__metadata__": {"a": 1}}, b""))


# ---- npy -----------------------------------------------------------------------------------
def npy(header_dict, data, version=(1, 0), header_text=None):
    text = header_text if header_text is not None else header_dict.encode()
    prefix = 10 if version[0] == 1 else 12
    text += b" " * ((64 - (prefix + len(text) + 1) % 64) % 64) + b"\n"
    length = struct.pack("<H", len(text)) if version[0] == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text + data


def npy_corpus():
    put("npy", "valid-f4-2x3", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(6)))
    put("npy", "valid-f8-v2", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
                                  struct.pack("<4d", 0.5, -1.0, 1e300, 2.0), version=(2, 0)))
    put("npy", "valid-u1-image", npy('{"descr": "|u1", "fortran_order": False, "shape": (1, 4, 4)}',
                                     bytes(range(0, 256, 16))))
    put("npy", "valid-scalar", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", floats(1)))
    put("npy", "valid-empty", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", b""))
    put("npy", "bad-fortran-order", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", floats(6)))
    put("npy", "bad-dtype-i4", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", bytes(8)))
    put("npy", "bad-data-short", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(5)))
    put("npy", "bad-shape-not-tuple", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", floats(3)))
    put("npy", "bad-shape-overflow",
        npy("{'descr': '<f8', 'fortran_order': False, 'shape': (281474976710655, 281474976710655), }", b""))
    put("npy", "bad-missing-key", npy("{'descr': '<f4', 'shape': (1,), }", floats(1)))
    put("npy", "bad-version-3", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", floats(1),
                                    version=(3, 0)))
    good = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(6))
    put("npy", "bad-header-length-past-end", good[:8] + struct.pack("<H", 0xFFFF) + good[10:])
    put("npy", "bad-no-magic", b"NUMPY" + good[5:])


# ---- images --------------------------------------------------------------------------------
def png(width, height, color_type, bit_depth, rows, extra_chunks=(), interlace=0):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(chunk(k, b) for k, b in extra_chunks) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def image_corpus():
    gray = png(4, 3, 0, 8, [bytes([x * 60 + y * 10 for x in range(4)]) for y in range(3)])
    put("image", "valid-gray.png", gray)
    put("image", "valid-rgb.png", png(3, 2, 2, 8, [bytes(range(y * 9, y * 9 + 9)) for y in range(2)]))
    put("image", "valid-rgba.png", png(2, 2, 6, 8, [bytes([255, 0, 0, 128, 0, 255, 0, 255])] * 2))
    put("image", "valid-gray-alpha-16bit.png", png(2, 1, 4, 16, [bytes([1, 2, 255, 255, 3, 4, 0, 0])]))
    put("image", "valid-palette.png", png(2, 2, 3, 8, [b"\x00\x01", b"\x01\x00"],
                                          extra_chunks=[(b"PLTE", b"\xff\x00\x00\x00\x00\xff")]))
    put("image", "valid-interlaced.png", png(1, 1, 0, 8, [b"\x80"], interlace=1))
    put("image", "valid-gray.pgm", b"P5\n3 2\n255\n" + bytes([0, 50, 100, 150, 200, 250]))
    put("image", "valid-bmp.bmp", struct.pack("<2sIHHI", b"BM", 14 + 40 + 8, 0, 0, 54) +
        struct.pack("<IiiHHIIiiII", 40, 2, 1, 1, 24, 0, 8, 2835, 2835, 0, 0) + b"\x00\x00\xff\xff\x00\x00\x00\x00")
    put("image", "valid-jpeg.jpg", base64.b64decode(
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hn"
        "Pk1xeXBkeFxlZ2P/wAALCAAIAAgBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABcQAAMBAAAAAAAAAAAAAAAAAAAWY6H/2gAIAQEA"
        "AD8AJEsP/9k="))
    put("image", "valid-gif.gif", base64.b64decode("R0lGODlhBAAEAPAAAP8AAAAAACH5BAAAAAAALAAAAAAEAAQAAAIEhI8JBQA7"))
    put("image", "bad-truncated.png", gray[: len(gray) - 20])
    put("image", "bad-not-an-image.png", b"this is a text file, not a PNG\n")
    put("image", "bad-empty.png", b"")
    put("image", "bad-too-wide.png", png(20000, 1, 0, 8, [bytes(20000)]))
    put("image", "bad-zero-width.png", png(0, 1, 0, 8, [b""]))
    corrupt = bytearray(gray)
    corrupt[gray.index(b"IDAT") + 6] ^= 0xFF
    put("image", "bad-idat-corrupt.png", bytes(corrupt))


if __name__ == "__main__":
    idx_corpus()
    safetensors_corpus()
    npy_corpus()
    image_corpus()
    total = 0
    for root, _, files in os.walk(CORPUS):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("corpus: %d bytes in %s" % (total, CORPUS))
