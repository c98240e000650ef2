"""The compact stored form of a model: what a pruned CifarResNet really costs on disk, losslessly.

    nbytes = export_compact(model, "models/magnitude.rz")   # bytes on disk
    model = load_compact("models/magnitude.rz")               # a CifarResNet, same outputs bit for bit in eval mode

Every model, the dense baseline included, goes through the same encoder, so size ratios compare like with like.
The encoding of each state_dict tensor is chosen from its content, never from a method name:
  * float32 with exact zeros: the nonzero values plus their positions, as a bitmask (np.packbits, N/8 bytes) or as
    the gaps between them, one byte each (255 = "255 more, continue"), whichever is smaller before compression;
    used whenever that beats plain float32 (more than ~3% zeros). Zeros come back as +0.0 (masking by multiplying
    leaves -0.0 for negative weights; x*(-0.0) and x*(+0.0) add the same to any nonzero sum, so outputs are unchanged).
  * non-negative integers (a SharedConv2d's assignment, BN's num_batches_tracked): packed to the fewest bits
    that hold the largest value, ceil(log2 k) bits per filter for a k-filter codebook.
  * everything else (SharedConv2d codebooks, BN weights and running stats, dense weights): plain float32.
  * model.masks: usually identical to a tensor's nonzero pattern, then stored as one flag; otherwise a bitmask.
All float32 values go into one stream whose bytes are regrouped by position (all first bytes, then all second
bytes, ...: the "shuffle" filter of HDF5/blosc), which puts the sign/exponent bytes together where lzma compresses
them well. No pickle anywhere. File layout:
    b"RESNETZ1" + xz( uint32 LE header length | JSON header (spec, tensor records) | float stream | byte stream )
xz's CRC64 catches corruption and truncation; every offset and count is checked against the spec on load.

The sizes this reaches (8-10x for 90% magnitude or k = 0.1 n sharing) are measured by the evaluate and sweep stages
and quoted in docs/results.md; tests/test_export.py checks the 6x floor at exactly 90% zeros.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import struct
from pathlib import Path

import numpy as np
import torch

from ..core.files import atomic_path
from . import CheckpointError, CifarResNet, build

MAGIC = b"RESNETZ1"
FORMAT = 1


class ExportError(CheckpointError):
    """A compact export that is corrupt, truncated or does not match its architecture; the message names the file."""


def _pack_bits(values: np.ndarray, width: int) -> bytes:
    """Non-negative ints → `width` bits each, least significant first, packed 8 per byte."""
    bits = (values.astype(np.uint64)[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)
    return np.packbits(bits.astype(np.uint8).ravel()).tobytes()


def _bits(data: bytes, count: int) -> np.ndarray:
    """`count` bits from packed bytes; np.unpackbits would silently pad a short buffer with zeros."""
    if len(data) != (count + 7) // 8:
        raise ValueError(f"{len(data)} bytes cannot hold exactly {count} packed bits")
    return np.unpackbits(np.frombuffer(data, np.uint8), count=count)


def _unpack_bits(data: bytes, width: int, count: int) -> np.ndarray:
    bits = _bits(data, count * width).reshape(count, width)
    return (bits.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(1)


# ---------------------------------------------------------------------------------------------- writing

class _Writer:
    def __init__(self):
        self.floats: list[np.ndarray] = []
        self.nfloats = 0
        self.raw = io.BytesIO()

    def add_floats(self, a: np.ndarray) -> int:
        offset = self.nfloats
        self.floats.append(np.ascontiguousarray(a, dtype="<f4").ravel())
        self.nfloats += a.size
        return offset

    def add_bytes(self, b: bytes) -> list[int]:
        return [self.raw.tell(), self.raw.write(b)]

    def float_stream(self) -> bytes:
        allf = np.concatenate(self.floats) if self.floats else np.zeros(0, "<f4")
        return allf.view(np.uint8).reshape(-1, 4).T.tobytes()  # byte shuffle: plane 0 of all values, plane 1, ...


def _gap_bytes(gaps: np.ndarray) -> bytes:
    """Gaps as bytes: g → (g // 255) bytes of 255, then g % 255. Mostly one byte per nonzero at high sparsity."""
    lengths = gaps // 255 + 1
    out = np.full(int(lengths.sum()), 255, np.uint8)
    out[np.cumsum(lengths) - 1] = gaps % 255
    return out.tobytes()


def _gaps_from_bytes(data: bytes) -> np.ndarray:
    b = np.frombuffer(data, np.uint8).astype(np.int64)
    return np.diff(np.cumsum(b)[b != 255], prepend=0)  # each gap ends at a byte < 255: sum its run of bytes


def _encode_float(w: _Writer, a: np.ndarray) -> dict:
    n, support = a.size, (a.ravel() != 0)
    nnz = int(support.sum())
    gaps = np.diff(np.flatnonzero(support), prepend=-1) - 1  # zeros skipped before each nonzero; >= 0
    bitmask_bytes, gap_bytes = (n + 7) // 8, int((gaps // 255 + 1).sum())
    if nnz * 4 + min(bitmask_bytes, gap_bytes) >= n * 4:
        return {"enc": "plain", "f": w.add_floats(a)}
    rec = {"enc": "sparse", "nnz": nnz, "f": w.add_floats(a.ravel()[support])}
    if bitmask_bytes <= gap_bytes:
        rec.update(support="bitmask", b=w.add_bytes(np.packbits(support).tobytes()))
    else:
        rec.update(support="gaps", b=w.add_bytes(_gap_bytes(gaps)))
    return rec


def export_compact(model: CifarResNet, path: str | os.PathLike) -> int:
    """Write `model` (spec, state_dict, masks) compactly to `path` (atomically); returns the file's size in bytes."""
    w, records = _Writer(), []
    masks = {k: v.detach().cpu().bool() for k, v in getattr(model, "masks", {}).items()}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        a = t.numpy()
        rec = {"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        if t.dtype == torch.float32:
            rec.update(_encode_float(w, a))
        elif not t.is_floating_point() and t.dtype != torch.bool and t.numel() and int(t.min()) >= 0:
            width = max(1, int(t.max()).bit_length())
            rec.update(enc="bits", width=width, b=w.add_bytes(_pack_bits(a.ravel(), width)))
        elif not t.is_floating_point() and t.dtype != torch.bool:
            rec.update(enc="raw", b=w.add_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes()))
        else:
            raise ValueError(f"export_compact: {name} has dtype {t.dtype}; only float32 and integer tensors")
        if name in masks:
            keep = masks.pop(name)
            if keep.shape != t.shape:
                raise ValueError(f"export_compact: mask {name} has shape {list(keep.shape)}, tensor {list(t.shape)}")
            if torch.equal(keep, t != 0):
                rec["mask"] = "nonzero"  # the common case: the kept entries are exactly the nonzero ones
            else:
                rec.update(mask="bitmask", mb=w.add_bytes(np.packbits(keep.numpy().ravel()).tobytes()))
        records.append(rec)
    if masks:
        raise ValueError(f"export_compact: masks for unknown tensors {sorted(masks)}")
    header = json.dumps({"format": FORMAT, "spec": model.spec(), "floats": w.nfloats,
                         "bytes": w.raw.tell(), "tensors": records}, separators=(",", ":")).encode()
    body = struct.pack("<I", len(header)) + header + w.float_stream() + w.raw.getvalue()
    data = MAGIC + lzma.compress(body, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                                 preset=9 | lzma.PRESET_EXTREME)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(data)


# ---------------------------------------------------------------------------------------------- reading

def load_compact(path: str | os.PathLike) -> CifarResNet:
    """Rebuild the model written by export_compact (train mode, like load_checkpoint); ExportError if anything
    about the file is wrong."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ExportError(f"{path}: cannot read the compact export ({e})") from e
    if not data.startswith(MAGIC):
        raise ExportError(f"{path}: not a compact model export (expected it to start with {MAGIC!r})")
    try:
        body = lzma.decompress(data[len(MAGIC):], format=lzma.FORMAT_XZ)
    except (lzma.LZMAError, EOFError) as e:
        raise ExportError(f"{path}: corrupt or truncated compact export ({e})") from e
    try:
        return _decode(body)
    except CheckpointError as e:
        raise ExportError(f"{path}: {e}") from e
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError, struct.error,
            RuntimeError) as e:
        raise ExportError(f"{path}: malformed compact export ({type(e).__name__}: {e})") from e


def _decode(body: bytes) -> CifarResNet:
    (hlen,) = struct.unpack_from("<I", body)
    header = json.loads(body[4:4 + hlen])
    if header.get("format") != FORMAT:
        raise ValueError(f"format {header.get('format')!r}, this code reads format {FORMAT}")
    nf, nb = int(header["floats"]), int(header["bytes"])
    if len(body) != 4 + hlen + 4 * nf + nb:
        raise ValueError(f"payload is {len(body) - 4 - hlen} bytes, the header says {4 * nf + nb}")
    planes = np.frombuffer(body, np.uint8, count=4 * nf, offset=4 + hlen).reshape(4, nf)
    floats = np.ascontiguousarray(planes.T).view("<f4").ravel()
    raw = body[4 + hlen + 4 * nf:]

    def chunk(span: list) -> bytes:
        start, size = int(span[0]), int(span[1])
        if start < 0 or size < 0 or start + size > len(raw):
            raise ValueError(f"byte span {span} outside the {len(raw)}-byte stream")
        return raw[start:start + size]

    def float_run(start: int, count: int) -> np.ndarray:
        if start < 0 or start + count > nf:
            raise ValueError(f"float span {start}+{count} outside the {nf}-value stream")
        return floats[start:start + count]

    model = build(header["spec"])
    expected = model.state_dict()
    state, masks = {}, {}
    for rec in header["tensors"]:
        name, shape = rec["name"], tuple(rec["shape"])
        if name not in expected or tuple(expected[name].shape) != shape or name in state:
            raise ValueError(f"tensor {name} {list(shape)} does not match the architecture spec {header['spec']}")
        n = int(np.prod(shape))
        if rec["enc"] == "plain":
            a = float_run(int(rec["f"]), n).copy()
        elif rec["enc"] == "sparse":
            nnz = int(rec["nnz"])
            if rec["support"] == "bitmask":
                support = _bits(chunk(rec["b"]), n).astype(bool)
                idx = np.flatnonzero(support)
            else:
                idx = np.cumsum(_gaps_from_bytes(chunk(rec["b"])) + 1) - 1
            if len(idx) != nnz or (nnz and idx[-1] >= n):
                raise ValueError(f"tensor {name}: support does not match {nnz} nonzeros in {n} entries")
            a = np.zeros(n, "<f4")
            a[idx] = float_run(int(rec["f"]), nnz)
        elif rec["enc"] == "bits":
            width = int(rec["width"])
            if not 1 <= width <= 63:
                raise ValueError(f"tensor {name}: bit width {width}")
            a = _unpack_bits(chunk(rec["b"]), width, n)
        elif rec["enc"] == "raw":
            a = np.frombuffer(chunk(rec["b"]), np.dtype(rec["dtype"]).newbyteorder("<"), count=n)
        else:
            raise ValueError(f"tensor {name}: unknown encoding {rec['enc']!r}")
        t = torch.from_numpy(np.array(a).reshape(shape)).to(expected[name].dtype)
        state[name] = t
        if "mask" in rec:
            masks[name] = (t != 0) if rec["mask"] == "nonzero" else \
                torch.from_numpy(_bits(chunk(rec["mb"]), n).astype(bool).reshape(shape))
    if set(state) != set(expected):
        raise ValueError(f"missing tensors {sorted(set(expected) - set(state))}")
    for name, m in model.named_modules():  # a stray assignment would index outside the codebook at forward time
        if hasattr(m, "assignment") and int(state[f"{name}.assignment"].max()) >= m.k:
            raise ValueError(f"{name}.assignment refers past the codebook's {m.k} filters")
    model.load_state_dict(state, strict=True)
    params = dict(model.named_parameters())
    for name, keep in masks.items():
        if name not in params:
            raise ValueError(f"mask {name} is not on a parameter")
        model.masks[name] = keep
    return model

