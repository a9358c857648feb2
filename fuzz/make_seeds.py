#!/usr/bin/env python3
"""Writes the committed seed corpus: fuzz/corpus/<target>/seed-*.

Each `requests` seed is one byte choosing the message type (see fuzz_targets/requests.rs)
followed by the protobuf encoding of a typical request, written by hand below so that no
protobuf package is needed. `data` and `policy` seeds are a selector byte and text.
Run from anywhere: python3 fuzz/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def mapref(kind, v):
    return {"id": f_varint(1, v) if kind == "id" else b"",
            "pin": f_bytes(2, v) if kind == "pin" else b"",
            "name": f_bytes(3, v) if kind == "name" else b""}[kind]


def data(kind, v):
    if kind == "raw":
        return f_bytes(1, v)
    if kind == "hex":
        return f_bytes(2, v)
    if kind == "number":
        return f_varint(3, v)
    return f_bytes(4, v)


def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


requests = {
    "create_hash": (0, f_varint(1, 1) + f_bytes(2, "stats_map") + f_varint(3, 4) + f_varint(4, 8)
                    + f_varint(5, 16) + f_bytes(9, "public/stats_map")),
    "create_percpu_eph": (0, f_varint(1, 5) + f_bytes(2, "pc") + f_varint(3, 4) + f_varint(4, 3)
                          + f_varint(5, 4) + f_varint(10, 1)),
    "create_inner": (0, f_varint(1, 12) + f_bytes(2, "outer") + f_varint(3, 4) + f_varint(4, 4)
                     + f_varint(5, 4) + f_bytes(8, mapref("id", 42))),
    "get_pin": (1, f_bytes(1, mapref("pin", "public/x"))),
    "get_abs_pin": (1, f_bytes(1, mapref("pin", "/sys/fs/bpf/bpfmapd/a/b"))),
    "get_name": (1, f_bytes(1, mapref("name", "xdp_stats"))),
    "list_all": (2, f_varint(1, 1)),
    "delete_map_id": (3, f_bytes(1, mapref("id", 7))),
    "pin_map": (4, f_bytes(1, mapref("id", 7)) + f_bytes(2, "dir/sub/pin")),
    "unpin_dotdot": (5, f_bytes(1, "../escape")),
    "freeze": (6, f_bytes(1, mapref("name", "m"))),
    "lookup_hex": (7, f_bytes(1, mapref("name", "stats_map")) + f_bytes(2, data("hex", "c1 c2"))
                   + f_varint(3, 1)),
    "lookup_bloom": (7, f_bytes(1, mapref("id", 3)) + f_bytes(5, data("raw", u64(9)))),
    "update_num": (8, f_bytes(1, mapref("id", 1)) + f_bytes(2, data("number", 1))
                   + f_bytes(3, data("hex", "0a 00 00 00 00 00 00 00")) + f_varint(5, 1)),
    "update_percpu": (8, f_bytes(1, mapref("id", 2)) + f_bytes(2, data("raw", u32(1)))
                      + f_bytes(4, data("hex", "01 02 03")) + f_bytes(4, data("raw", b"\x04\x05\x06"))),
    "update_inner": (8, f_bytes(1, mapref("id", 2)) + f_bytes(2, data("number", 0))
                     + f_bytes(7, mapref("pin", "inner"))),
    "delete_key": (9, f_bytes(1, mapref("id", 1)) + f_bytes(2, data("hex", "0x01 0x00 0x00 0x00"))),
    "lookup_delete": (10, f_bytes(1, mapref("id", 1)) + f_varint(3, 2)),
    "getnext": (11, f_bytes(1, mapref("id", 1)) + f_bytes(2, data("raw", u32(5))) + f_varint(3, 1)),
    "dump_packed": (12, f_bytes(1, mapref("id", 1)) + f_varint(3, 10) + f_varint(4, 1)),
    "dump_delete": (12, f_bytes(1, mapref("pin", "q")) + f_varint(2, 2) + f_varint(5, 1)),
    "batch_entries": (13, f_bytes(1, mapref("id", 1))
                      + f_bytes(2, f_bytes(1, data("raw", u32(1))) + f_bytes(2, data("raw", u64(10))))
                      + f_bytes(2, f_bytes(1, data("hex", "02 00 00 00")) + f_bytes(2, data("number", 20)))
                      + f_varint(4, 1)),
    "batch_packed": (13, f_bytes(1, mapref("id", 1))
                     + f_bytes(3, f_varint(1, 2) + f_bytes(2, u32(1) + u32(2)) + f_bytes(3, u64(1) + u64(2)))),
    "batch_delete": (14, f_bytes(1, mapref("id", 1)) + f_bytes(2, data("raw", u32(1)))
                     + f_bytes(2, data("number", 2))),
    "read_events": (15, f_bytes(1, mapref("pin", "prog/events")) + f_varint(2, 1)),
    "read_events_typed": (15, f_bytes(1, mapref("id", 3)) + f_varint(2, 3)
                          + f_bytes(3, "struct event { __u64 seq; }")),
    "watch": (16, f_bytes(1, mapref("name", "stats_map")) + f_varint(2, 2) + f_varint(3, 250)),
}

data_seeds = {
    "raw4": b"\x00" + u32(1),
    "raw8": b"\x00" + u64(10),
    "hex_spaced": b"\x01c1 c2",
    "hex_0x": b"\x010xc1 0xC2",
    "hex_packed": b"\x01c1c2c3c4",
    "number": b"\x02" + u64(258),
    "json": b'\x03{"a": 1}',
    "percpu": b"\x04" + b"\x00" * 8 + b"\x0101 02 0",
    "pin_rel": b"\x05public/x",
    "pin_dotdot": b"\x05a/../../x",
    "pin_abs": b"\x05/sys/fs/bpf/x",
    "pin_symlink": b"\x05out/x",
    "pin_dot": b"\x05dir/x.y",
}

POLICY = b'''[[rule]]
who   = ["uid:65534", "group:nogroup", "cert:CN=agent-*", "san:spiffe://fleet/*"]
maps  = ["pin:public/*", "name:xdp_*", "id:42", "managed", "all"]
allow = ["read"]
[[rule]]
who   = ["anonymous"]
maps  = ["all"]
deny  = ["write", "create", "admin"]
[[rule]]
who   = ["user:root", "gid:0", "any"]
maps  = ["pin:/sys/fs/bpf/*"]
allow = ["write", "create", "admin"]
'''

policy_seeds = {
    "issue_example": b"\x01" + POLICY,
    "empty": b"\x01",
    "bad_line": b'\x01[[rule]]\nwho = ["uid:x"]\nmaps = ["all"]\nallow = [read]\n',
    "glob_cn": b"\x00agent-*\x00agent-1",
    "glob_spiffe": b"\x00spiffe://fleet/*\x00spiffe://fleet/a/b",
    "glob_q": b"\x00a?c*\x00abcxyz",
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, content in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(content)


write("requests", {k: bytes([sel]) + body for k, (sel, body) in requests.items()})
write("data", data_seeds)
write("policy", policy_seeds)
