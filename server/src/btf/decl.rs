//! C-like type declarations (CreateMap's `key_type` / `value_type`) turned into BTF types.
//!
//! Users know their key and value as C: `struct flow { __u32 saddr; __u16 sport; }`, a plain
//! `__u64`, `char[16]`. This is a small C declaration parser for exactly that world, with
//! natural C alignment and padding (the System V rules clang uses for BPF), so that the sizes
//! follow from the types and the kernel, bpftool and the daemon all see the same layout.
//!
//! Accepted: integers (`u8`..`u64`, `s8`..`s64`, `__u32`, `uint32_t`, `int`, `unsigned long
//! long`, `__int128`, ...), `char`, `bool`/`_Bool`, fixed arrays (also multi-dimensional),
//! pointers, structs and unions (named or anonymous, nested, bitfields), enums, and typedefs.
//! Several declarations may be given, separated by `;`: the last one is the type, the ones
//! before it declare the structs, unions, enums and typedefs it uses.

use std::collections::HashMap;

use super::model::{Btf, Kind, Member, Type, INT_BOOL, INT_SIGNED};

/// Builds the BTF of one or more declarations into one [`Btf`] (a map's key and value share
/// one BTF object).
#[derive(Debug, Default)]
pub struct Builder {
    btf: Btf,
    ints: HashMap<&'static str, u32>,
    index: Option<u32>,
}

/// Integer spellings the parser knows: name → (C base type, size, signed). Names that are
/// not C's own are emitted as typedefs of the base type, so they read back as written.
const INT_NAMES: &[(&str, &str, u32, bool)] = &[
    ("u8", "unsigned char", 1, false),
    ("u16", "unsigned short", 2, false),
    ("u32", "unsigned int", 4, false),
    ("u64", "unsigned long long", 8, false),
    ("s8", "signed char", 1, true),
    ("s16", "short", 2, true),
    ("s32", "int", 4, true),
    ("s64", "long long", 8, true),
    ("__u8", "unsigned char", 1, false),
    ("__u16", "unsigned short", 2, false),
    ("__u32", "unsigned int", 4, false),
    ("__u64", "unsigned long long", 8, false),
    ("__s8", "signed char", 1, true),
    ("__s16", "short", 2, true),
    ("__s32", "int", 4, true),
    ("__s64", "long long", 8, true),
    ("uint8_t", "unsigned char", 1, false),
    ("uint16_t", "unsigned short", 2, false),
    ("uint32_t", "unsigned int", 4, false),
    ("uint64_t", "unsigned long long", 8, false),
    ("int8_t", "signed char", 1, true),
    ("int16_t", "short", 2, true),
    ("int32_t", "int", 4, true),
    ("int64_t", "long long", 8, true),
    ("__u128", "unsigned __int128", 16, false),
    ("__s128", "__int128", 16, true),
];

/// Whether `name` is an integer spelling the parser knows without a declaration (the C
/// renderer leaves these undeclared).
pub fn is_builtin_name(name: &str) -> bool {
    INT_NAMES.iter().any(|(n, ..)| *n == name)
        || matches!(
            name,
            "bool"
                | "_Bool"
                | "char"
                | "signed char"
                | "unsigned char"
                | "short"
                | "unsigned short"
                | "int"
                | "unsigned int"
                | "long"
                | "unsigned long"
                | "long long"
                | "unsigned long long"
                | "__int128"
                | "unsigned __int128"
        )
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(i128),
    Punct(char),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = src[i + 2..].find("*/").ok_or("unterminated /* comment")?;
            i += end + 4;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            i = src[i..].find('\n').map_or(b.len(), |n| i + n);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_owned()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let text = &src[start..i];
            let t = text.trim_end_matches(['u', 'U', 'l', 'L']);
            let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                i128::from_str_radix(h, 16)
            } else {
                t.parse::<i128>()
            }
            .map_err(|_| format!("bad number {text:?}"))?;
            out.push(Tok::Num(n));
        } else if "{}[];,*:=()-".contains(char::from(c)) {
            out.push(Tok::Punct(char::from(c)));
            i += 1;
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(format!("unexpected character {ch:?}"));
        }
    }
    Ok(out)
}

/// Names declared so far in one declaration string.
#[derive(Debug, Default)]
struct Scope {
    tags: HashMap<String, u32>,
    typedefs: HashMap<String, u32>,
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    b: &'a mut Builder,
    scope: Scope,
    depth: usize,
}

/// Deepest nesting of struct and union bodies (the parser recurses on them; a request must
/// not be able to exhaust the daemon's stack).
const MAX_NESTING: usize = 16;

/// Largest key or value the kernel takes (KMALLOC_MAX_SIZE is larger; this keeps
/// arithmetic small and messages early).
const MAX_SIZE: u64 = 1 << 24;

impl Builder {
    /// An empty builder.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Parses one declaration string and returns the id of its type.
    pub fn declare(&mut self, src: &str) -> Result<u32, String> {
        let toks = lex(src)?;
        if toks.is_empty() {
            return Err("empty declaration".into());
        }
        let mut p = Parser {
            toks,
            pos: 0,
            b: self,
            scope: Scope::default(),
            depth: 0,
        };
        let mut last = None;
        while p.pos < p.toks.len() {
            if p.eat(';') {
                continue;
            }
            last = Some(p.item()?);
            if p.pos < p.toks.len() && !p.eat(';') {
                return Err(format!("expected ';' {}", p.here()));
            }
        }
        let id = last.ok_or("empty declaration")?;
        let size = self.btf.size_of(id).unwrap_or(0);
        if size == 0 {
            return Err("the type has no size (void?)".into());
        }
        Ok(id)
    }

    /// The BTF built so far.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// Takes the BTF built so far.
    pub fn into_btf(self) -> Btf {
        self.btf
    }

    fn base_int(&mut self, name: &'static str, size: u32, signed: bool, boolean: bool) -> u32 {
        if let Some(&id) = self.ints.get(name) {
            return id;
        }
        let encoding = if boolean {
            INT_BOOL
        } else if signed {
            INT_SIGNED
        } else {
            0
        };
        let id = self.btf.add(Type {
            name: name.to_owned(),
            size,
            kind: Kind::Int {
                encoding,
                offset: 0,
                bits: (size * 8) as u8,
            },
        });
        self.ints.insert(name, id);
        id
    }

    fn named_int(&mut self, name: &'static str) -> Option<u32> {
        let &(n, base, size, signed) = INT_NAMES.iter().find(|(n, ..)| *n == name)?;
        if let Some(&id) = self.ints.get(n) {
            return Some(id);
        }
        let to = self.base_int(base, size, signed, false);
        let id = self.btf.add(Type {
            name: n.to_owned(),
            size: 0,
            kind: Kind::Typedef(to),
        });
        self.ints.insert(n, id);
        Some(id)
    }

    fn index_type(&mut self) -> u32 {
        if let Some(id) = self.index {
            return id;
        }
        let id = self.btf.add(Type {
            name: "__ARRAY_SIZE_TYPE__".into(),
            size: 4,
            kind: Kind::Int {
                encoding: 0,
                offset: 0,
                bits: 32,
            },
        });
        self.index = Some(id);
        id
    }

    fn array(&mut self, elem: u32, len: u32) -> u32 {
        let index = self.index_type();
        self.btf.add(Type {
            name: String::new(),
            size: 0,
            kind: Kind::Array { elem, index, len },
        })
    }

    fn pointer(&mut self, to: u32) -> u32 {
        self.btf.add(Type {
            name: String::new(),
            size: 0,
            kind: Kind::Ptr(to),
        })
    }
}

/// Natural alignment of a type, in bytes.
pub fn align_of(btf: &Btf, id: u32) -> u32 {
    fn go(btf: &Btf, id: u32, depth: usize) -> u32 {
        if depth > 64 {
            return 1;
        }
        let Some((_, t)) = btf.resolve(id) else {
            return 1;
        };
        match &t.kind {
            Kind::Int { .. } | Kind::Enum { .. } | Kind::Float => t.size.clamp(1, 16),
            Kind::Ptr(_) => 8,
            Kind::Array { elem, .. } => go(btf, *elem, depth + 1),
            Kind::Struct(ms) | Kind::Union(ms) => ms
                .iter()
                .map(|m| go(btf, m.ty, depth + 1))
                .max()
                .unwrap_or(1),
            _ => 1,
        }
    }
    go(btf, id, 0)
}

fn align_up(n: u64, a: u64) -> u64 {
    n.div_ceil(a.max(1)) * a.max(1)
}

/// One member before layout: name, type, bitfield width.
struct Field {
    name: String,
    ty: u32,
    bits: Option<u32>,
}

impl Parser<'_> {
    fn here(&self) -> String {
        match self.toks.get(self.pos) {
            None => "at the end".to_owned(),
            Some(Tok::Ident(s)) => format!("at {s:?}"),
            Some(Tok::Num(n)) => format!("at {n}"),
            Some(Tok::Punct(c)) => format!("at '{c}'"),
        }
    }

    fn peek_ident(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(s)) => Some(s),
            _ => None,
        }
    }

    fn is(&self, c: char) -> bool {
        self.toks.get(self.pos) == Some(&Tok::Punct(c))
    }

    fn eat(&mut self, c: char) -> bool {
        if self.is(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}' {}", self.here()))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(s)) if !is_keyword(s) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(format!("expected a name {}", self.here())),
        }
    }

    fn number(&mut self) -> Result<i128, String> {
        let neg = self.eat('-');
        match self.toks.get(self.pos) {
            Some(Tok::Num(n)) => {
                let n = *n;
                self.pos += 1;
                Ok(if neg { -n } else { n })
            }
            _ => Err(format!("expected a number {}", self.here())),
        }
    }

    /// `typedef T declarator` or `T [*...][N]...`.
    fn item(&mut self) -> Result<u32, String> {
        if self.peek_ident() == Some("typedef") {
            self.pos += 1;
            let base = self.type_spec()?;
            let (name, ty, bits) = self.declarator(base, true)?;
            let name = name.ok_or("typedef needs a name")?;
            if bits.is_some() {
                return Err(format!("typedef {name} cannot be a bitfield"));
            }
            let id = self.b.btf.add(Type {
                name: name.clone(),
                size: 0,
                kind: Kind::Typedef(ty),
            });
            self.scope.typedefs.insert(name, id);
            return Ok(id);
        }
        let base = self.type_spec()?;
        let (name, ty, bits) = self.declarator(base, false)?;
        if let Some(n) = name {
            return Err(format!(
                "unexpected name {n:?}: give the type alone (e.g. `char[16]`, `struct flow {{ ... }}`)"
            ));
        }
        if bits.is_some() {
            return Err("a bitfield is only allowed inside a struct".into());
        }
        Ok(ty)
    }

    /// `'*'* [name] ('[' N ']')* [':' bits]`, applied to `base`.
    fn declarator(
        &mut self,
        base: u32,
        need_name: bool,
    ) -> Result<(Option<String>, u32, Option<u32>), String> {
        let mut ty = base;
        while self.eat('*') {
            ty = self.b.pointer(ty);
        }
        let name = match self.peek_ident() {
            Some(s) if !is_keyword(s) => Some(self.ident()?),
            _ if need_name => return Err(format!("expected a field name {}", self.here())),
            _ => None,
        };
        let mut dims = Vec::new();
        while self.eat('[') {
            let n = self.number()?;
            if !(1..=i128::from(u32::MAX)).contains(&n) {
                return Err(format!("array length {n} must be at least 1"));
            }
            dims.push(n as u32);
            self.expect(']')?;
        }
        for &n in dims.iter().rev() {
            ty = self.b.array(ty, n);
        }
        if self.b.btf.size_of(ty).is_some_and(|s| s > MAX_SIZE) {
            return Err(format!("type is larger than {MAX_SIZE} bytes"));
        }
        let bits = if self.eat(':') {
            let n = self.number()?;
            let (_, t) = self.b.btf.resolve(ty).ok_or("bad type")?;
            let Kind::Int { bits: width, .. } = t.kind else {
                return Err(format!(
                    "bitfield {} must have an integer type",
                    name.as_deref().unwrap_or("")
                ));
            };
            if n < 1 || n > i128::from(width) {
                return Err(format!(
                    "bitfield {} is {n} bits wide; its type has {width}",
                    name.as_deref().unwrap_or("")
                ));
            }
            Some(n as u32)
        } else {
            None
        };
        Ok((name, ty, bits))
    }

    fn type_spec(&mut self) -> Result<u32, String> {
        // Qualifiers are accepted and dropped: they do not change the layout.
        while matches!(self.peek_ident(), Some("const" | "volatile")) {
            self.pos += 1;
        }
        let Some(word) = self.peek_ident().map(str::to_owned) else {
            return Err(format!("expected a type {}", self.here()));
        };
        match word.as_str() {
            "struct" | "union" => self.record(word == "union"),
            "enum" => self.enumeration(),
            "void" => {
                self.pos += 1;
                if !self.is('*') {
                    return Err("void has no size: only `void *` is allowed".into());
                }
                Ok(0)
            }
            "bool" | "_Bool" => {
                self.pos += 1;
                Ok(self.b.base_int("_Bool", 1, false, true))
            }
            "unsigned" | "signed" | "char" | "short" | "int" | "long" | "__int128" => self.c_int(),
            _ => {
                if let Some(&id) = self.scope.typedefs.get(&word) {
                    self.pos += 1;
                    return Ok(id);
                }
                let known = INT_NAMES
                    .iter()
                    .find(|(n, ..)| *n == word)
                    .map(|(n, ..)| *n);
                if let Some(id) = known.and_then(|n| self.b.named_int(n)) {
                    self.pos += 1;
                    return Ok(id);
                }
                Err(format!(
                    "unknown type {word:?} (known: u8..u64, s8..s64, __u32, uint32_t, int, char, bool, struct, union, enum, and typedefs declared before)"
                ))
            }
        }
    }

    /// `unsigned long long`, `signed char`, `short int`, ...
    fn c_int(&mut self) -> Result<u32, String> {
        let (mut unsigned, mut signed, mut char_, mut short, mut int, mut long, mut i128_) =
            (false, false, false, false, false, 0, false);
        while let Some(w) = self.peek_ident() {
            match w {
                "unsigned" => unsigned = true,
                "signed" => signed = true,
                "char" => char_ = true,
                "short" => short = true,
                "int" => int = true,
                "long" => long += 1,
                "__int128" => i128_ = true,
                "const" | "volatile" => {}
                _ => break,
            }
            self.pos += 1;
        }
        let _ = int;
        if unsigned && signed {
            return Err("a type cannot be both signed and unsigned".into());
        }
        let (name, size, is_signed): (&'static str, u32, bool) = if i128_ {
            if unsigned {
                ("unsigned __int128", 16, false)
            } else {
                ("__int128", 16, true)
            }
        } else if char_ {
            if unsigned {
                ("unsigned char", 1, false)
            } else if signed {
                ("signed char", 1, true)
            } else {
                ("char", 1, true)
            }
        } else if short {
            if unsigned {
                ("unsigned short", 2, false)
            } else {
                ("short", 2, true)
            }
        } else if long >= 2 {
            if unsigned {
                ("unsigned long long", 8, false)
            } else {
                ("long long", 8, true)
            }
        } else if long == 1 {
            if unsigned {
                ("unsigned long", 8, false)
            } else {
                ("long", 8, true)
            }
        } else if unsigned {
            ("unsigned int", 4, false)
        } else {
            ("int", 4, true)
        };
        Ok(self.b.base_int(name, size, is_signed, false))
    }

    fn record(&mut self, union: bool) -> Result<u32, String> {
        let word = if union { "union" } else { "struct" };
        self.pos += 1;
        let tag = match self.peek_ident() {
            Some(s) if !is_keyword(s) => Some(self.ident()?),
            _ => None,
        };
        if !self.is('{') {
            let tag = tag.ok_or_else(|| format!("expected a name or '{{' after {word}"))?;
            return self
                .scope
                .tags
                .get(&format!("{word} {tag}"))
                .copied()
                .ok_or_else(|| {
                    format!("{word} {tag} is not declared (declare it first: `{word} {tag} {{ ... }}; ...`)")
                });
        }
        self.expect('{')?;
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "structs and unions nest deeper than {MAX_NESTING} levels"
            ));
        }
        let mut fields: Vec<Field> = Vec::new();
        while !self.eat('}') {
            if self.pos >= self.toks.len() {
                return Err(format!("missing '}}' closing {word}"));
            }
            let base = self.type_spec()?;
            // An anonymous struct or union member: `struct { ... };`.
            if self.is(';') {
                let anonymous = self.b.btf.get(base).is_some_and(|t| {
                    matches!(t.kind, Kind::Struct(_) | Kind::Union(_)) && t.name.is_empty()
                });
                if !anonymous {
                    return Err(format!("expected a field name {}", self.here()));
                }
                self.pos += 1;
                fields.push(Field {
                    name: String::new(),
                    ty: base,
                    bits: None,
                });
                continue;
            }
            loop {
                let (name, ty, bits) = self.declarator(base, true)?;
                let name = name.unwrap_or_default();
                if !name.is_empty() && fields.iter().any(|f| f.name == name) {
                    return Err(format!("field {name:?} is declared twice"));
                }
                fields.push(Field { name, ty, bits });
                if !self.eat(',') {
                    break;
                }
            }
            self.expect(';')?;
        }
        if fields.is_empty() {
            return Err(format!(
                "{word} {} has no fields",
                tag.as_deref().unwrap_or("")
            ));
        }
        let (size, members) = self.layout(&fields, union)?;
        let t = Type {
            name: tag.clone().unwrap_or_default(),
            size,
            kind: if union {
                Kind::Union(members)
            } else {
                Kind::Struct(members)
            },
        };
        let id = self.b.btf.add(t);
        if let Some(tag) = tag {
            let key = format!("{word} {tag}");
            if self.scope.tags.insert(key.clone(), id).is_some() {
                return Err(format!("{key} is declared twice"));
            }
        }
        Ok(id)
    }

    /// C layout of `fields`: natural alignment, System V bitfield packing.
    fn layout(&self, fields: &[Field], union: bool) -> Result<(u32, Vec<Member>), String> {
        let btf = &self.b.btf;
        let mut bit = 0u64;
        let mut end = 0u64;
        let mut align = 1u64;
        let mut members = Vec::with_capacity(fields.len());
        for f in fields {
            let size = btf.size_of(f.ty).ok_or("field of unknown size")?;
            let a = u64::from(align_of(btf, f.ty));
            align = align.max(a);
            let at = if union {
                0
            } else if let Some(w) = f.bits {
                let unit = size * 8;
                if bit / unit != (bit + u64::from(w) - 1) / unit {
                    align_up(bit, a * 8)
                } else {
                    bit
                }
            } else {
                align_up(bit, a * 8)
            };
            let width = f.bits.map_or(size * 8, u64::from);
            if !union {
                bit = at + width;
            }
            end = end.max(at + width);
            if at > 0xff_ffff {
                return Err("struct is too large".into());
            }
            members.push(Member {
                name: f.name.clone(),
                ty: f.ty,
                bit_offset: at as u32,
                bitfield_size: f.bits.unwrap_or(0),
            });
        }
        let size = align_up(end.div_ceil(8), align);
        if size > MAX_SIZE {
            return Err(format!("type is larger than {MAX_SIZE} bytes"));
        }
        Ok((size as u32, members))
    }

    fn enumeration(&mut self) -> Result<u32, String> {
        self.pos += 1;
        let tag = match self.peek_ident() {
            Some(s) if !is_keyword(s) => Some(self.ident()?),
            _ => None,
        };
        if !self.is('{') {
            let tag = tag.ok_or("expected a name or '{' after enum")?;
            return self
                .scope
                .tags
                .get(&format!("enum {tag}"))
                .copied()
                .ok_or_else(|| format!("enum {tag} is not declared"));
        }
        self.expect('{')?;
        let mut values: Vec<(String, i128)> = Vec::new();
        let mut next = 0i128;
        while !self.eat('}') {
            let name = self.ident()?;
            if self.eat('=') {
                next = self.number()?;
            }
            if !(i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&next) {
                return Err(format!("enum value {name} = {next} does not fit 32 bits"));
            }
            if values.iter().any(|(n, _)| *n == name) {
                return Err(format!("enum value {name} is declared twice"));
            }
            values.push((name, next));
            next += 1;
            if !self.eat(',') {
                self.expect('}')?;
                break;
            }
        }
        if values.is_empty() {
            return Err("enum has no values".into());
        }
        let signed = values.iter().any(|(_, v)| *v < 0);
        if signed && values.iter().any(|(_, v)| *v > i128::from(i32::MAX)) {
            return Err("enum values do not fit one 32-bit type".into());
        }
        let id = self.b.btf.add(Type {
            name: tag.clone().unwrap_or_default(),
            size: 4,
            kind: Kind::Enum {
                signed,
                wide: false,
                values,
            },
        });
        if let Some(tag) = tag {
            if self.scope.tags.insert(format!("enum {tag}"), id).is_some() {
                return Err(format!("enum {tag} is declared twice"));
            }
        }
        Ok(id)
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "struct"
            | "union"
            | "enum"
            | "typedef"
            | "const"
            | "volatile"
            | "unsigned"
            | "signed"
            | "char"
            | "short"
            | "int"
            | "long"
            | "void"
            | "bool"
            | "_Bool"
            | "__int128"
    )
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn build(src: &str) -> (Btf, u32) {
        let mut b = Builder::new();
        let id = b.declare(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        (b.into_btf(), id)
    }

    fn offsets(btf: &Btf, id: u32) -> Vec<(String, u32, u32)> {
        match &btf.resolve(id).map(|(_, t)| t.kind.clone()) {
            Some(Kind::Struct(ms)) | Some(Kind::Union(ms)) => ms
                .iter()
                .map(|m| (m.name.clone(), m.bit_offset, m.bitfield_size))
                .collect(),
            other => panic!("not a struct: {other:?}"),
        }
    }

    #[test]
    fn plain_types_have_c_sizes() {
        for (src, size) in [
            ("__u64", 8),
            ("u8", 1),
            ("uint16_t", 2),
            ("int", 4),
            ("unsigned long long", 8),
            ("long", 8),
            ("char[16]", 16),
            ("bool", 1),
            ("__u32[2][3]", 24),
            ("__int128", 16),
            ("void *", 8),
        ] {
            let (btf, id) = build(src);
            assert_eq!(btf.size_of(id), Some(size), "{src}");
        }
    }

    #[test]
    fn structs_follow_natural_alignment() {
        let (btf, id) = build(
            "struct flow { __u32 saddr; __u32 daddr; __u16 sport; __u16 dport; __u8 proto; }",
        );
        assert_eq!(btf.size_of(id), Some(16), "3 bytes of tail padding");
        assert_eq!(
            offsets(&btf, id)
                .iter()
                .map(|(_, o, _)| o / 8)
                .collect::<Vec<_>>(),
            vec![0, 4, 8, 10, 12]
        );
        let (btf, id) = build("struct p { __u8 a; __u64 b; __u16 c; }");
        assert_eq!(btf.size_of(id), Some(24));
        assert_eq!(
            offsets(&btf, id)
                .iter()
                .map(|(_, o, _)| o / 8)
                .collect::<Vec<_>>(),
            vec![0, 8, 16]
        );
    }

    #[test]
    fn nested_declarations_and_typedefs() {
        let (btf, id) = build(
            "struct stats { __u64 packets; __u64 bytes; }; typedef __u32 pid_t; struct v { char comm[16]; pid_t pid; struct stats in, out; struct { __u8 a; } inner; }",
        );
        assert_eq!(btf.size_of(id), Some(16 + 4 + 4 + 16 + 16 + 1 + 7));
        let names: Vec<String> = offsets(&btf, id).into_iter().map(|(n, ..)| n).collect();
        assert_eq!(names, ["comm", "pid", "in", "out", "inner"]);
    }

    #[test]
    fn bitfields_pack_like_clang() {
        let (btf, id) = build("struct b { __u32 a: 3; __u32 b: 30; __u8 c; unsigned int d: 1; }");
        // a at 0, b does not fit the rest of the first u32: starts at 32; c at byte 8; d at 72.
        assert_eq!(
            offsets(&btf, id),
            vec![
                ("a".into(), 0, 3),
                ("b".into(), 32, 30),
                ("c".into(), 64, 0),
                ("d".into(), 72, 1)
            ]
        );
        assert_eq!(btf.size_of(id), Some(12));
    }

    #[test]
    fn unions_and_enums() {
        let (btf, id) = build("union u { __u32 x; __u8 b[6]; }");
        assert_eq!(btf.size_of(id), Some(8));
        let (btf, id) = build("enum dir { IN, OUT = 5, BACK }");
        assert_eq!(btf.size_of(id), Some(4));
        match &btf.get(id).map(|t| t.kind.clone()) {
            Some(Kind::Enum { values, .. }) => {
                assert_eq!(values[2], ("BACK".into(), 6));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mistakes_are_named() {
        let deep = "struct { ".repeat(100_000);
        for (src, words) in [
            ("", "empty"),
            ("struct x", "not declared"),
            ("struct x { __u32 a; __u32 a; }", "twice"),
            ("struct x { float a; }", "unknown type \"float\""),
            ("struct x { __u32 a }", "expected ';'"),
            ("__u32 a", "unexpected name"),
            ("char[0]", "at least 1"),
            ("struct x { __u8 a: 9; }", "9 bits"),
            ("void", "void"),
            ("struct x { }", "no fields"),
            ("__u32 $", "unexpected character"),
            (deep.as_str(), "nest deeper"),
        ] {
            let mut b = Builder::new();
            match b.declare(src) {
                Ok(_) => panic!("{src:?} should fail"),
                Err(e) => assert!(e.contains(words), "{src:?}: {e}"),
            }
        }
    }
}
