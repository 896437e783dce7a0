"""Fragmented MP4 for one H.264 track, written as frames arrive: the native engine's muxer.

A segment file is ``ftyp`` and an empty ``moov`` (the track's description), then one
``moof`` + ``mdat`` fragment per group of pictures, as ffmpeg writes with
``movflags=+frag_keyframe+empty_moov+default_base_moof``. Each fragment is one write, so
a killed recorder leaves a file readable up to its last whole fragment. The SHA-256 of
the file is taken from the bytes as they are written: nothing is read back.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

TIMESCALE = 90_000  # RTP's clock for video; the track's time is RTP time, rebased


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack("!I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack("!I", (version << 24) | flags), *payload)


# --- the sequence parameter set -----------------------------------------------------


class _Bits:
    """Exp-Golomb reader over an RBSP (emulation-prevention bytes removed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise ValueError("the SPS ends early")
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("a bad Exp-Golomb code in the SPS")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def sps_size(sps: bytes) -> tuple[int, int]:
    """Width and height in pixels (cropping applied) from an H.264 SPS NAL unit."""
    bits = _Bits(sps[1:])
    profile = bits.bits(8)
    bits.bits(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = bits.ue()
        if chroma == 3:
            bits.bit()
        bits.ue()
        bits.ue()
        bits.bit()
        if bits.bit():  # scaling matrices
            for i in range(8 if chroma != 3 else 12):
                if bits.bit():
                    last = next_ = 8
                    for _ in range(16 if i < 6 else 64):
                        if next_:
                            next_ = (last + bits.se() + 256) % 256
                        last = next_ or last
    bits.ue()  # log2_max_frame_num - 4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.bit()
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.bit()
    if not frame_mbs_only:
        bits.bit()
    bits.bit()  # direct_8x8_inference
    width, height = width_mbs * 16, height_units * 16 * (2 - frame_mbs_only)
    if bits.bit():  # cropping
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        crop_x = 1 if chroma == 0 else (2 if chroma in (1, 2) else 1)
        crop_y = (1 if chroma == 0 else (2 if chroma == 1 else 1)) * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    return width, height


# --- the header ----------------------------------------------------------------------


def init_segment(sps: bytes, pps: bytes) -> bytes:
    """``ftyp`` + ``moov`` for one H.264 track described by `sps` and `pps`."""
    width, height = sps_size(sps)
    avcc = box(b"avcC", bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),
               struct.pack("!H", len(sps)), sps, b"\x01", struct.pack("!H", len(pps)), pps)
    avc1 = box(b"avc1", b"\x00" * 6, struct.pack("!H", 1), b"\x00" * 16,
               struct.pack("!HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
               b"\x00" * 32, struct.pack("!Hh", 0x18, -1), avcc)
    stbl = box(b"stbl", full_box(b"stsd", 0, 0, struct.pack("!I", 1), avc1),
               full_box(b"stts", 0, 0, b"\x00" * 4), full_box(b"stsc", 0, 0, b"\x00" * 4),
               full_box(b"stsz", 0, 0, b"\x00" * 8), full_box(b"stco", 0, 0, b"\x00" * 4))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack("!I", 1),
                                 full_box(b"url ", 0, 1)))
    minf = box(b"minf", full_box(b"vmhd", 0, 1, b"\x00" * 8), dinf, stbl)
    mdia = box(b"mdia",
               full_box(b"mdhd", 0, 0, struct.pack("!IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0)),
               full_box(b"hdlr", 0, 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"Vigila\x00"),
               minf)
    matrix = struct.pack("!9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    tkhd = full_box(b"tkhd", 0, 3, struct.pack("!IIIII", 0, 0, 1, 0, 0), b"\x00" * 8,
                    struct.pack("!hhhH", 0, 0, 0, 0), matrix,
                    struct.pack("!II", width << 16, height << 16))
    mvhd = full_box(b"mvhd", 0, 0, struct.pack("!IIII", 0, 0, 1000, 0),
                    struct.pack("!IH", 0x10000, 0x100), b"\x00" * 10, matrix, b"\x00" * 24,
                    struct.pack("!I", 2))
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack("!IIIII", 1, 1, 0, 0, 0)))
    ftyp = box(b"ftyp", b"isom", struct.pack("!I", 0x200), b"isomiso2avc1iso6mp41")
    return ftyp + box(b"moov", mvhd, box(b"trak", tkhd, mdia), mvex)


# --- fragments -----------------------------------------------------------------------

_SYNC = 0x02000000  # depends on no other sample
_NON_SYNC = 0x01010000  # depends on others, not a sync sample


@dataclass
class Sample:
    data: bytes  # NAL units, each behind its 4-byte length
    duration: int  # in TIMESCALE units
    key: bool


def sample_data(nals: Sequence[bytes]) -> bytes:
    """Access unit NAL units in MP4's length-prefixed form."""
    return b"".join(struct.pack("!I", len(nal)) + nal for nal in nals)


def fragment(sequence: int, decode_time: int, samples: Sequence[Sample]) -> bytes:
    """One ``moof`` + ``mdat`` holding `samples`, the first decoded at `decode_time`."""
    entries = b"".join(struct.pack("!III", s.duration, len(s.data),
                                   _SYNC if s.key else _NON_SYNC) for s in samples)
    # trun: data offset, then per sample its duration, size and flags.
    trun_size = 12 + 8 + len(entries)
    traf_size = 8 + 16 + 20 + trun_size
    moof_size = 8 + 16 + traf_size
    traf = box(b"traf", full_box(b"tfhd", 0, 0x020000, struct.pack("!I", 1)),
               full_box(b"tfdt", 1, 0, struct.pack("!Q", decode_time)),
               full_box(b"trun", 0, 0x000701, struct.pack("!Ii", len(samples), moof_size + 8),
                        entries))
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack("!I", sequence)), traf)
    assert len(moof) == moof_size
    payload = b"".join(s.data for s in samples)
    return moof + struct.pack("!I4s", 8 + len(payload), b"mdat") + payload


class SegmentWriter:
    """One segment file being written: header, then fragments; hashed as written."""

    def __init__(self, path: str | os.PathLike[str], header: bytes) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._hash = hashlib.sha256()
        self.bytes = 0
        self.fragments = 0
        self.decode_time = 0  # time of the next sample, from the segment's start
        self._write(header)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hash.update(data)
        self.bytes += len(data)

    def add(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        self.fragments += 1
        self._write(fragment(self.fragments, self.decode_time, samples))
        self.decode_time += sum(s.duration for s in samples)

    def close(self) -> tuple[int, str]:
        """Flushed to disk and closed: (bytes, SHA-256)."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        return self.bytes, self._hash.hexdigest()

    def abandon(self) -> None:
        os.close(self._fd)
