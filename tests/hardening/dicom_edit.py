"""Minimal DICOM (Part 10, explicit VR little endian) tag editor for the hardening tests, standard library only.

Reads the file meta group and the top-level data set (nested sequences are kept as opaque bytes, defined or
undefined length), replaces or inserts top-level elements, and writes the file back with the meta group length
recomputed. Enough to stamp PHI markers and hostile SeriesDescriptions onto the series GraftWatch's own writer makes
(gw::dicom::WriteDicomSeries writes uncompressed explicit VR little endian).
"""
import struct

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


def _skip_undefined(buf, pos):
    """Position just after the sequence delimiter matching an undefined-length SQ starting at pos."""
    while pos + 8 <= len(buf):
        group, elem, length = struct.unpack_from("<HHI", buf, pos)
        tag = (group << 16) | elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag == _ITEM:
            if length == 0xFFFFFFFF:
                pos = _skip_item(buf, pos)
            else:
                pos += length
        else:
            raise ValueError("unexpected tag in sequence at %d" % pos)
    raise ValueError("unterminated sequence")


def _skip_item(buf, pos):
    """Position after the item delimiter of an undefined-length item whose content starts at pos."""
    while pos + 8 <= len(buf):
        group, elem = struct.unpack_from("<HH", buf, pos)
        if ((group << 16) | elem) == _ITEM_END:
            return pos + 8
        _, _, _, pos = _read_element(buf, pos)
    raise ValueError("unterminated item")


def _read_element(buf, pos):
    group, elem = struct.unpack_from("<HH", buf, pos)
    vr = bytes(buf[pos + 4 : pos + 6])
    if vr in _LONG_VRS:
        (length,) = struct.unpack_from("<I", buf, pos + 8)
        start = pos + 12
    else:
        (length,) = struct.unpack_from("<H", buf, pos + 6)
        start = pos + 8
    if length == 0xFFFFFFFF:
        end = _skip_undefined(buf, start)
    else:
        end = start + length
    if end > len(buf):
        raise ValueError("element (%04x,%04x) runs past the end of the file" % (group, elem))
    return (group, elem), vr, bytes(buf[pos:end]), end


def _parse(buf, pos, end=None):
    elements = {}
    end = len(buf) if end is None else end
    while pos < end:
        tag, vr, raw, pos = _read_element(buf, pos)
        elements[tag] = (vr, raw)
    return elements


def _encode(tag, vr, value):
    if isinstance(value, str):
        value = value.encode("latin-1")
    pad = b"\0" if vr == b"UI" else b" "
    if len(value) % 2:
        value += pad
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", tag[0], tag[1], vr, 0, len(value)) + value
    return struct.pack("<HH2sH", tag[0], tag[1], vr, len(value)) + value


def read(path):
    buf = open(path, "rb").read()
    if buf[128:132] != b"DICM":
        raise ValueError("%s: no DICM preamble" % path)
    meta_group_len = struct.unpack_from("<I", buf, 140)[0]  # (0002,0000) UL is the first element
    meta_end = 144 + meta_group_len
    return buf[:128], _parse(buf, 132, meta_end), _parse(buf, meta_end)


def value(elements, tag):
    vr, raw = elements[tag]
    header = 12 if vr in _LONG_VRS else 8
    return raw[header:].rstrip(b"\0 ").decode("latin-1")


def write(path, preamble, meta, data):
    meta = dict(meta)
    meta.pop((0x0002, 0x0000), None)
    meta_body = b"".join(raw for _, (_, raw) in sorted(meta.items()))
    out = preamble + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(meta_body)) + meta_body
    out += b"".join(raw for _, (_, raw) in sorted(data.items()))
    open(path, "wb").write(out)


def edit(path, changes):
    """changes: {(group, element): (vr, value)}; value None removes the element. UI changes to
    (0008,0018) SOPInstanceUID are mirrored into the meta MediaStorageSOPInstanceUID."""
    preamble, meta, data = read(path)
    for tag, (vr, val) in changes.items():
        vr = vr.encode() if isinstance(vr, str) else vr
        if val is None:
            data.pop(tag, None)
            continue
        data[tag] = (vr, _encode(tag, vr, val))
        if tag == (0x0008, 0x0018):
            meta[(0x0002, 0x0003)] = (b"UI", _encode((0x0002, 0x0003), b"UI", val))
    write(path, preamble, meta, data)
