//! The BTF type table: the kernel's binary BTF blob parsed into plain Rust values, and
//! written back.
//!
//! Why our own reader and writer instead of walking libbpf's `struct btf`: the blob format
//! is small and stable (linux/btf.h), and plain values let the declaration parser, the C
//! renderer and the JSON codec be tested without a kernel and without `unsafe`. The kernel
//! still validates every blob the daemon loads (`BPF_BTF_LOAD`), and the blobs read back
//! come from the kernel itself.

use std::collections::HashMap;

/// BTF magic number.
const MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header`.
const HEADER_LEN: usize = 24;

/// `BTF_INT_SIGNED`.
pub const INT_SIGNED: u8 = 1;
/// `BTF_INT_CHAR`.
pub const INT_CHAR: u8 = 2;
/// `BTF_INT_BOOL`.
pub const INT_BOOL: u8 = 4;

/// A struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Field name ("" for an anonymous struct or union member).
    pub name: String,
    /// Type id.
    pub ty: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield in bits (0: not a bitfield).
    pub bitfield_size: u32,
}

/// What a type is. Ids refer to other entries of the same [`Btf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Type id 0.
    Void,
    /// An integer of `bits` bits at `offset` bits inside its `size` bytes.
    Int {
        /// BTF_INT_SIGNED, BTF_INT_CHAR, BTF_INT_BOOL bits.
        encoding: u8,
        /// Bit offset inside the storage (legacy bitfields).
        offset: u8,
        /// Number of bits.
        bits: u8,
    },
    /// A pointer.
    Ptr(u32),
    /// A fixed array.
    Array {
        /// Element type.
        elem: u32,
        /// Index type (an int).
        index: u32,
        /// Number of elements.
        len: u32,
    },
    /// A struct.
    Struct(Vec<Member>),
    /// A union.
    Union(Vec<Member>),
    /// An enum of `size` bytes (BTF_KIND_ENUM or ENUM64).
    Enum {
        /// Values are signed.
        signed: bool,
        /// BTF_KIND_ENUM64.
        wide: bool,
        /// Names and values.
        values: Vec<(String, i128)>,
    },
    /// A forward declaration.
    Fwd {
        /// `union` rather than `struct`.
        union: bool,
    },
    /// `typedef`.
    Typedef(u32),
    /// `volatile`.
    Volatile(u32),
    /// `const`.
    Const(u32),
    /// `restrict`.
    Restrict(u32),
    /// A type tag (transparent).
    TypeTag(u32),
    /// A function (linkage in the vlen field).
    Func {
        /// Its prototype.
        proto: u32,
        /// Linkage.
        linkage: u16,
    },
    /// A function prototype: return type and parameters.
    FuncProto {
        /// Return type.
        ret: u32,
        /// Parameter names and types.
        params: Vec<(String, u32)>,
    },
    /// A variable.
    Var {
        /// Its type.
        ty: u32,
        /// Linkage.
        linkage: u32,
    },
    /// A data section: (type, offset, size) of each variable.
    Datasec(Vec<(u32, u32, u32)>),
    /// A floating-point number of `size` bytes.
    Float,
    /// A declaration tag.
    DeclTag {
        /// The tagged type.
        ty: u32,
        /// Member index, or -1.
        component: i32,
    },
}

/// One BTF type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// Name ("" for anonymous types).
    pub name: String,
    /// Size in bytes for ints, structs, unions, enums, floats, datasecs; 0 otherwise.
    pub size: u32,
    /// The kind and its details.
    pub kind: Kind,
}

/// A whole BTF object: `types[id]`, with `types[0]` = void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Btf {
    types: Vec<Type>,
}

impl Default for Btf {
    fn default() -> Self {
        Btf::new()
    }
}

/// Longest chain of typedefs and modifiers followed before giving up (a cycle).
const MAX_CHAIN: usize = 64;

impl Btf {
    /// An empty table (only void).
    pub fn new() -> Btf {
        Btf {
            types: vec![Type {
                name: String::new(),
                size: 0,
                kind: Kind::Void,
            }],
        }
    }

    /// Adds a type and returns its id.
    pub fn add(&mut self, t: Type) -> u32 {
        self.types.push(t);
        (self.types.len() - 1) as u32
    }

    /// The type with id `id`.
    pub fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// Number of types, void included.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when only void is there.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// Follows typedefs, modifiers and type tags to the type underneath.
    pub fn resolve(&self, mut id: u32) -> Option<(u32, &Type)> {
        for _ in 0..MAX_CHAIN {
            let t = self.get(id)?;
            match t.kind {
                Kind::Typedef(to)
                | Kind::Volatile(to)
                | Kind::Const(to)
                | Kind::Restrict(to)
                | Kind::TypeTag(to) => id = to,
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// Size in bytes of a value of type `id` (None for void, functions and cycles).
    pub fn size_of(&self, id: u32) -> Option<u64> {
        self.size_depth(id, 0)
    }

    fn size_depth(&self, id: u32, depth: usize) -> Option<u64> {
        if depth > MAX_CHAIN {
            return None;
        }
        let (_, t) = self.resolve(id)?;
        match &t.kind {
            Kind::Int { .. }
            | Kind::Struct(_)
            | Kind::Union(_)
            | Kind::Enum { .. }
            | Kind::Float
            | Kind::Datasec(_) => Some(u64::from(t.size)),
            Kind::Ptr(_) => Some(8),
            Kind::Array { elem, len, .. } => self
                .size_depth(*elem, depth + 1)?
                .checked_mul(u64::from(*len)),
            Kind::Var { ty, .. } => self.size_depth(*ty, depth + 1),
            _ => None,
        }
    }

    /// Parses a raw BTF blob (as `BPF_OBJ_GET_INFO_BY_FD` returns it).
    pub fn parse(raw: &[u8]) -> Result<Btf, String> {
        let mut r = Reader { raw, pos: 0 };
        let magic = r.u16()?;
        if magic != MAGIC {
            return Err(format!("not BTF: magic {magic:#x}"));
        }
        let _version = r.u8()?;
        let _flags = r.u8()?;
        let hdr_len = r.u32()? as usize;
        let type_off = r.u32()? as usize;
        let type_len = r.u32()? as usize;
        let str_off = r.u32()? as usize;
        let str_len = r.u32()? as usize;
        let body = raw
            .get(hdr_len..)
            .ok_or("BTF header longer than the blob")?;
        let strings = body
            .get(str_off..str_off.saturating_add(str_len))
            .ok_or("BTF string section out of bounds")?;
        let types = body
            .get(type_off..type_off.saturating_add(type_len))
            .ok_or("BTF type section out of bounds")?;
        let name = |off: u32| -> Result<String, String> {
            let s = strings
                .get(off as usize..)
                .ok_or_else(|| format!("BTF name offset {off} out of bounds"))?;
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            Ok(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        let mut btf = Btf::new();
        let mut r = Reader { raw: types, pos: 0 };
        while r.pos < types.len() {
            let name_off = r.u32()?;
            let info = r.u32()?;
            let size_or_type = r.u32()?;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 == 1;
            let kind_num = (info >> 24) & 0x1f;
            let mut size = 0;
            let kind = match kind_num {
                1 => {
                    size = size_or_type;
                    let v = r.u32()?;
                    Kind::Int {
                        encoding: ((v >> 24) & 0xf) as u8,
                        offset: ((v >> 16) & 0xff) as u8,
                        bits: (v & 0xff) as u8,
                    }
                }
                2 => Kind::Ptr(size_or_type),
                3 => Kind::Array {
                    elem: r.u32()?,
                    index: r.u32()?,
                    len: r.u32()?,
                },
                4 | 5 => {
                    size = size_or_type;
                    let mut members = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let n = r.u32()?;
                        let ty = r.u32()?;
                        let off = r.u32()?;
                        let (bit_offset, bitfield_size) = if kflag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        members.push(Member {
                            name: name(n)?,
                            ty,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    if kind_num == 4 {
                        Kind::Struct(members)
                    } else {
                        Kind::Union(members)
                    }
                }
                6 => {
                    size = size_or_type;
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let n = r.u32()?;
                        let v = r.u32()?;
                        let v = if kflag {
                            i128::from(v)
                        } else {
                            i128::from(v as i32)
                        };
                        values.push((name(n)?, v));
                    }
                    Kind::Enum {
                        signed: !kflag,
                        wide: false,
                        values,
                    }
                }
                7 => Kind::Fwd { union: kflag },
                8 => Kind::Typedef(size_or_type),
                9 => Kind::Volatile(size_or_type),
                10 => Kind::Const(size_or_type),
                11 => Kind::Restrict(size_or_type),
                12 => Kind::Func {
                    proto: size_or_type,
                    linkage: vlen as u16,
                },
                13 => {
                    let mut params = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let n = r.u32()?;
                        params.push((name(n)?, r.u32()?));
                    }
                    Kind::FuncProto {
                        ret: size_or_type,
                        params,
                    }
                }
                14 => Kind::Var {
                    ty: size_or_type,
                    linkage: r.u32()?,
                },
                15 => {
                    size = size_or_type;
                    let mut vars = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        vars.push((r.u32()?, r.u32()?, r.u32()?));
                    }
                    Kind::Datasec(vars)
                }
                16 => {
                    size = size_or_type;
                    Kind::Float
                }
                17 => Kind::DeclTag {
                    ty: size_or_type,
                    component: r.u32()? as i32,
                },
                18 => Kind::TypeTag(size_or_type),
                19 => {
                    size = size_or_type;
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let n = r.u32()?;
                        let lo = u64::from(r.u32()?);
                        let hi = u64::from(r.u32()?);
                        let v = (hi << 32) | lo;
                        let v = if kflag {
                            i128::from(v)
                        } else {
                            i128::from(v as i64)
                        };
                        values.push((name(n)?, v));
                    }
                    Kind::Enum {
                        signed: !kflag,
                        wide: true,
                        values,
                    }
                }
                k => return Err(format!("unknown BTF kind {k} (type {})", btf.len())),
            };
            btf.add(Type {
                name: name(name_off)?,
                size,
                kind,
            });
        }
        Ok(btf)
    }

    /// Writes the blob the kernel's `BPF_BTF_LOAD` takes.
    pub fn encode(&self) -> Vec<u8> {
        let mut strings = Strings::default();
        let mut types = Vec::new();
        let mut put = |v: u32| types.extend_from_slice(&v.to_ne_bytes());
        for t in self.types.iter().skip(1) {
            let name_off = strings.add(&t.name);
            let info = |kind: u32, vlen: usize, kflag: bool| -> u32 {
                (u32::from(kflag) << 31) | (kind << 24) | (vlen as u32 & 0xffff)
            };
            match &t.kind {
                Kind::Void => {}
                Kind::Int {
                    encoding,
                    offset,
                    bits,
                } => {
                    put(name_off);
                    put(info(1, 0, false));
                    put(t.size);
                    put((u32::from(*encoding) << 24)
                        | (u32::from(*offset) << 16)
                        | u32::from(*bits));
                }
                Kind::Ptr(to) => {
                    put(name_off);
                    put(info(2, 0, false));
                    put(*to);
                }
                Kind::Array { elem, index, len } => {
                    put(name_off);
                    put(info(3, 0, false));
                    put(0);
                    put(*elem);
                    put(*index);
                    put(*len);
                }
                Kind::Struct(members) | Kind::Union(members) => {
                    let bitfields = members.iter().any(|m| m.bitfield_size != 0);
                    let k = if matches!(t.kind, Kind::Struct(_)) {
                        4
                    } else {
                        5
                    };
                    put(name_off);
                    put(info(k, members.len(), bitfields));
                    put(t.size);
                    for m in members {
                        put(strings.add(&m.name));
                        put(m.ty);
                        put(if bitfields {
                            (m.bitfield_size << 24) | (m.bit_offset & 0xff_ffff)
                        } else {
                            m.bit_offset
                        });
                    }
                }
                Kind::Enum {
                    signed,
                    wide,
                    values,
                } => {
                    put(name_off);
                    put(info(if *wide { 19 } else { 6 }, values.len(), !signed));
                    put(t.size);
                    for (n, v) in values {
                        put(strings.add(n));
                        put(*v as u32);
                        if *wide {
                            put((*v as u64 >> 32) as u32);
                        }
                    }
                }
                Kind::Fwd { union } => {
                    put(name_off);
                    put(info(7, 0, *union));
                    put(0);
                }
                Kind::Typedef(to) => {
                    put(name_off);
                    put(info(8, 0, false));
                    put(*to);
                }
                Kind::Volatile(to) => {
                    put(name_off);
                    put(info(9, 0, false));
                    put(*to);
                }
                Kind::Const(to) => {
                    put(name_off);
                    put(info(10, 0, false));
                    put(*to);
                }
                Kind::Restrict(to) => {
                    put(name_off);
                    put(info(11, 0, false));
                    put(*to);
                }
                Kind::Func { proto, linkage } => {
                    put(name_off);
                    put(info(12, usize::from(*linkage), false));
                    put(*proto);
                }
                Kind::FuncProto { ret, params } => {
                    put(name_off);
                    put(info(13, params.len(), false));
                    put(*ret);
                    for (n, ty) in params {
                        put(strings.add(n));
                        put(*ty);
                    }
                }
                Kind::Var { ty, linkage } => {
                    put(name_off);
                    put(info(14, 0, false));
                    put(*ty);
                    put(*linkage);
                }
                Kind::Datasec(vars) => {
                    put(name_off);
                    put(info(15, vars.len(), false));
                    put(t.size);
                    for (ty, off, size) in vars {
                        put(*ty);
                        put(*off);
                        put(*size);
                    }
                }
                Kind::Float => {
                    put(name_off);
                    put(info(16, 0, false));
                    put(t.size);
                }
                Kind::DeclTag { ty, component } => {
                    put(name_off);
                    put(info(17, 0, false));
                    put(*ty);
                    put(*component as u32);
                }
                Kind::TypeTag(to) => {
                    put(name_off);
                    put(info(18, 0, false));
                    put(*to);
                }
            }
        }
        let mut out = Vec::with_capacity(HEADER_LEN + types.len() + strings.bytes.len());
        out.extend_from_slice(&MAGIC.to_ne_bytes());
        out.push(1); // version
        out.push(0); // flags
        for v in [
            HEADER_LEN as u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.bytes.len() as u32,
        ] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings.bytes);
        out
    }
}

/// The string section being written: "\0" first, each name once.
#[derive(Debug)]
struct Strings {
    bytes: Vec<u8>,
    seen: HashMap<String, u32>,
}

impl Default for Strings {
    fn default() -> Self {
        Strings {
            bytes: vec![0],
            seen: HashMap::new(),
        }
    }
}

impl Strings {
    fn add(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&off) = self.seen.get(s) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.seen.insert(s.to_owned(), off);
        off
    }
}

struct Reader<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self
            .raw
            .get(self.pos..self.pos + N)
            .ok_or_else(|| format!("BTF truncated at byte {}", self.pos))?;
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(bytes);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_ne_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_ne_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(name: &str, size: u32, encoding: u8) -> Type {
        Type {
            name: name.into(),
            size,
            kind: Kind::Int {
                encoding,
                offset: 0,
                bits: (size * 8) as u8,
            },
        }
    }

    #[test]
    fn encode_then_parse_is_identity() {
        let mut b = Btf::new();
        let u32t = b.add(int("unsigned int", 4, 0));
        let chr = b.add(int("char", 1, INT_SIGNED));
        let arr = b.add(Type {
            name: String::new(),
            size: 0,
            kind: Kind::Array {
                elem: chr,
                index: u32t,
                len: 16,
            },
        });
        let td = b.add(Type {
            name: "__u32".into(),
            size: 0,
            kind: Kind::Typedef(u32t),
        });
        let e = b.add(Type {
            name: "dir".into(),
            size: 4,
            kind: Kind::Enum {
                signed: true,
                wide: false,
                values: vec![("IN".into(), 0), ("OUT".into(), -1)],
            },
        });
        let s = b.add(Type {
            name: "v".into(),
            size: 28,
            kind: Kind::Struct(vec![
                Member {
                    name: "comm".into(),
                    ty: arr,
                    bit_offset: 0,
                    bitfield_size: 0,
                },
                Member {
                    name: "pid".into(),
                    ty: td,
                    bit_offset: 128,
                    bitfield_size: 0,
                },
                Member {
                    name: "flag".into(),
                    ty: u32t,
                    bit_offset: 160,
                    bitfield_size: 3,
                },
                Member {
                    name: "d".into(),
                    ty: e,
                    bit_offset: 192,
                    bitfield_size: 0,
                },
            ]),
        });
        let raw = b.encode();
        let back = Btf::parse(&raw).unwrap_or_default();
        assert_eq!(back, b);
        assert_eq!(back.size_of(arr), Some(16));
        assert_eq!(back.size_of(td), Some(4));
        assert_eq!(back.size_of(s), Some(28));
        assert_eq!(back.resolve(td).map(|(id, _)| id), Some(u32t));
    }

    #[test]
    fn refuses_garbage() {
        assert!(Btf::parse(&[1, 2, 3]).is_err());
        assert!(Btf::parse(&[0u8; 40]).is_err());
        let mut raw = Btf::new().encode();
        raw[8] = 200; // type_off past the end
        assert!(Btf::parse(&raw).is_err() || Btf::parse(&raw).is_ok_and(|b| b.is_empty()));
    }
}
