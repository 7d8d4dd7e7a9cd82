"""Hostile reference clips, built in the test: a FLAC decompression bomb and a 1 Hz WAV.

The bomb is written frame by frame here rather than with libsndfile, which takes 15-20 s
of CPU to encode 314 million samples of silence; an attacker crafts it by hand too. Every
frame is eight CONSTANT subframes (3 bytes each), so an hour of audio is a few kilobytes
(FLAC format: xiph.org/flac/format.html; the CRCs are the ones it specifies).
"""

from __future__ import annotations

import struct


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _utf8_number(n: int) -> bytes:
    return chr(n).encode("utf-8", "surrogatepass")  # FLAC codes frame numbers this way


def flac_bomb(rate: int = 655_350, channels: int = 8, seconds: float = 60.0,
              block: int = 65_535) -> bytes:
    """A valid 16-bit FLAC of silence; decoded to float32 it is rate*channels*seconds*4 bytes."""
    total = int(rate * seconds)
    info = struct.pack(">HH", block, block) + b"\0" * 6  # block sizes; frame sizes unknown
    packed = (rate << 44) | ((channels - 1) << 41) | (15 << 36) | total  # 20+3+5+36 bits
    info += packed.to_bytes(8, "big") + b"\0" * 16  # no MD5
    out = [b"fLaC", bytes([0x80, 0, 0, len(info)]), info]  # last metadata block
    for number, start in enumerate(range(0, total, block)):
        size = min(block, total - start)
        # sync + fixed blocking; block size in 16 bits at the end; rate from STREAMINFO;
        # channels independent; 16 bits per sample.
        head = bytes([0xFF, 0xF8, 0x70, ((channels - 1) << 4) | 0x08])
        head += _utf8_number(number) + struct.pack(">H", size - 1)
        frame = head + bytes([_crc8(head)]) + b"\0\0\0" * channels
        out.append(frame + struct.pack(">H", _crc16(frame)))
    return b"".join(out)


def tiny_wav(rate: int = 1, samples: int = 10) -> bytes:
    """A 44-byte header plus ``samples`` 16-bit samples at ``rate`` Hz (64 bytes by default)."""
    data = b"\0\0" * samples
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)
