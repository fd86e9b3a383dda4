"""The small real files the simulator serves as task results: an MP4 video and PNG images.

There is no encoder on the machines this runs on, so the video is built by hand: an H.264
Baseline stream whose macroblocks are all I_PCM (raw samples, no compression, so no entropy
coder is needed), wrapped in a minimal ISO BMFF file (`ftyp`, `moov`, `mdat`). Every frame is an
IDR picture, so any frame decodes on its own.
"""

from __future__ import annotations

import io
import struct
from functools import cache

VIDEO_SIDE = 64  # pixels; a multiple of the 16-pixel macroblock
VIDEO_FPS = 8
VIDEO_FRAMES = 8  # one second
_MB = 16


class _Bits:
    """An MSB-first bit writer with the Exp-Golomb codes of H.264 (clause 9.1)."""

    def __init__(self) -> None:
        self._bits: list[int] = []

    def u(self, width: int, value: int) -> None:
        self._bits.extend((value >> (width - 1 - i)) & 1 for i in range(width))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while len(self._bits) % 8:
            self._bits.append(0)

    def raw(self, data: bytes) -> None:
        for byte in data:
            self.u(8, byte)

    def trailing(self) -> bytes:
        """rbsp_trailing_bits, then the bytes."""
        self._bits.append(1)
        self.align_zero()
        return bytes(
            int("".join(map(str, self._bits[i : i + 8])), 2) for i in range(0, len(self._bits), 8)
        )


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit: header byte and the payload with emulation-prevention bytes inserted."""
    out, zeros = bytearray([header]), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(width_mbs: int, height_mbs: int) -> bytes:
    b = _Bits()
    b.u(8, 66)  # profile_idc: Baseline
    b.u(8, 0b11000000)  # constraint_set0/1: also decodable as Constrained Baseline
    b.u(8, 10)  # level_idc 1.0 (64x64 at 8 fps is far inside it)
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(0)  # pic_order_cnt_type
    b.ue(0)  # log2_max_pic_order_cnt_lsb_minus4
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(width_mbs - 1)
    b.ue(height_mbs - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    return _nal(0x67, b.trailing())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 0)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x68, b.trailing())


def _idr_slice(frame: int, width_mbs: int, height_mbs: int) -> bytes:
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I, and every slice of the picture is I
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num (always 0 in an IDR picture)
    b.ue(frame % 2)  # idr_pic_id: consecutive IDR pictures must differ
    b.u(4, 0)  # pic_order_cnt_lsb
    b.u(1, 0)  # no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.se(0)  # slice_qp_delta
    for mb in range(width_mbs * height_mbs):
        b.ue(25)  # mb_type I_PCM
        b.align_zero()  # pcm_alignment_zero_bit
        # A diagonal gradient that drifts from frame to frame; samples stay in 16..235 (the
        # video range, and never 0, which old decoders refused in PCM samples).
        x, y = mb % width_mbs, mb // width_mbs
        luma = bytes(
            16 + (8 * (x * _MB + i % _MB + y * _MB + i // _MB) + 24 * frame) % 220
            for i in range(_MB * _MB)
        )
        b.raw(luma)
        b.raw(bytes([128 - 6 * frame]) * 64 + bytes([128 + 6 * frame]) * 64)  # Cb then Cr
    return _nal(0x65, b.trailing())


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


@cache
def mp4_video() -> bytes:
    """A valid one-second 64x64 H.264 MP4 (built once, about 50 KB)."""
    side_mbs = VIDEO_SIDE // _MB
    sps, pps = _sps(side_mbs, side_mbs), _pps()
    samples = [
        struct.pack(">I", len(nal)) + nal  # length-prefixed NAL units, as avcC declares
        for nal in (_idr_slice(f, side_mbs, side_mbs) for f in range(VIDEO_FRAMES))
    ]
    timescale, duration = 1000 * VIDEO_FPS, 1000 * VIDEO_FRAMES
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),  # 4-byte lengths, one SPS
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    avc1 = _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HH", VIDEO_SIDE, VIDEO_SIDE),
        struct.pack(">II", 0x480000, 0x480000),  # 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
            _full_box(b"stts", 0, 0, struct.pack(">III", 1, len(samples), 1000)),
            _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(samples), 1)),
            _full_box(
                b"stsz",
                0,
                0,
                struct.pack(">II", 0, len(samples)),
                *(struct.pack(">I", len(s)) for s in samples),
            ),
            _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
        )
        minf = _box(
            b"minf",
            _full_box(b"vmhd", 0, 1, bytes(8)),
            _box(
                b"dinf",
                _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)),
            ),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0)),
            _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\0"),
            minf,
        )
        tkhd = _full_box(
            b"tkhd",
            0,
            3,  # enabled, in movie
            struct.pack(">IIIII", 0, 0, 1, 0, 1000),
            bytes(8),
            struct.pack(">hhhH", 0, 0, 0, 0),
            _MATRIX,
            struct.pack(">II", VIDEO_SIDE << 16, VIDEO_SIDE << 16),
        )
        mvhd = _full_box(
            b"mvhd",
            0,
            0,
            struct.pack(">IIIIIH", 0, 0, 1000, 1000, 0x10000, 0x100),
            bytes(10),
            _MATRIX,
            bytes(24),
            struct.pack(">I", 2),  # next_track_ID
        )
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    # moov's size does not depend on the offset's value, so measure it once, then place mdat.
    offset = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(offset) + _box(b"mdat", *samples)


@cache
def png_image(index: int = 0) -> bytes:
    """A small valid PNG; `index` varies its colour so several results differ."""
    from PIL import Image, ImageDraw

    hue = (40 + 70 * index) % 256
    image = Image.new("RGB", (64, 64), (hue, 255 - hue, 128))
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(255 - hue, hue, 64))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
