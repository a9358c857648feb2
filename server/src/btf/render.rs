//! C declarations of BTF types, for MapInfo's `key_type` / `value_type`.
//!
//! The text is meant to be read by a person deciding what JSON to send, and to be accepted
//! back by CreateMap's parser ([`super::decl`]): named structs, unions and enums the type
//! uses are declared first, each ended by `;`, and the type itself comes last, e.g.
//! `struct stats { __u64 packets; __u64 bytes; }; struct v { char comm[16]; struct stats in; }`.

use std::collections::HashSet;

use super::decl::is_builtin_name;
use super::model::{Btf, Kind};

/// How deep nested types are followed (BTF from the kernel is acyclic through values, but
/// pointers can loop).
const MAX_DEPTH: usize = 32;

/// The C declaration of type `id`, preceded by the declarations it depends on.
pub fn declaration(btf: &Btf, id: u32) -> String {
    let mut r = Renderer {
        btf,
        done: HashSet::new(),
        out: Vec::new(),
    };
    let last = r.top(id);
    r.out.push(last);
    r.out.join("; ")
}

struct Renderer<'a> {
    btf: &'a Btf,
    done: HashSet<u32>,
    out: Vec<String>,
}

impl Renderer<'_> {
    /// The type itself as the last declaration: a named struct/union/enum is defined in full.
    fn top(&mut self, id: u32) -> String {
        let Some(t) = self.btf.get(id) else {
            return format!("/* unknown type {id} */");
        };
        match &t.kind {
            Kind::Struct(_) | Kind::Union(_) | Kind::Enum { .. } => {
                self.done.insert(id);
                self.body(id, 0)
            }
            Kind::Typedef(to) if !is_builtin_name(&t.name) => {
                self.define(id, 0);
                let _ = to;
                t.name.clone()
            }
            _ => {
                let (spec, suffix) = self.spec(id, 0);
                format!("{spec}{suffix}").trim_end().to_owned()
            }
        }
    }

    /// Declares named type `id` (and what it needs) before the current one, once.
    fn define(&mut self, id: u32, depth: usize) {
        if !self.done.insert(id) || depth > MAX_DEPTH {
            return;
        }
        let Some(t) = self.btf.get(id) else { return };
        match &t.kind {
            Kind::Struct(_) | Kind::Union(_) | Kind::Enum { .. } => {
                let body = self.body(id, depth + 1);
                self.out.push(body);
            }
            Kind::Typedef(to) => {
                let (spec, suffix) = self.spec(*to, depth + 1);
                let sep = if spec.ends_with('*') { "" } else { " " };
                self.out
                    .push(format!("typedef {spec}{sep}{}{suffix}", t.name));
            }
            _ => {}
        }
    }

    /// `struct name { members }`, `union ...`, `enum name { A = 0, ... }`.
    fn body(&mut self, id: u32, depth: usize) -> String {
        let Some(t) = self.btf.get(id) else {
            return String::new();
        };
        match &t.kind {
            Kind::Struct(ms) | Kind::Union(ms) => {
                let word = if matches!(t.kind, Kind::Struct(_)) {
                    "struct"
                } else {
                    "union"
                };
                let mut s = if t.name.is_empty() {
                    format!("{word} {{")
                } else {
                    format!("{word} {} {{", t.name)
                };
                for m in ms {
                    let (spec, suffix) = self.spec(m.ty, depth + 1);
                    let sep = if spec.ends_with('*') || m.name.is_empty() {
                        ""
                    } else {
                        " "
                    };
                    s.push(' ');
                    s.push_str(&spec);
                    s.push_str(sep);
                    s.push_str(&m.name);
                    s.push_str(&suffix);
                    if m.bitfield_size != 0 {
                        s.push_str(&format!(": {}", m.bitfield_size));
                    }
                    s.push(';');
                }
                s.push_str(" }");
                s
            }
            Kind::Enum { values, .. } => {
                let vals: Vec<String> = values.iter().map(|(n, v)| format!("{n} = {v}")).collect();
                if t.name.is_empty() {
                    format!("enum {{ {} }}", vals.join(", "))
                } else {
                    format!("enum {} {{ {} }}", t.name, vals.join(", "))
                }
            }
            _ => String::new(),
        }
    }

    /// The type specifier and the declarator suffix (`[16]`) of a member of type `id`.
    fn spec(&mut self, id: u32, depth: usize) -> (String, String) {
        if depth > MAX_DEPTH {
            return ("void *".into(), String::new());
        }
        let Some(t) = self.btf.get(id) else {
            return (format!("/* type {id} */ void *"), String::new());
        };
        match &t.kind {
            Kind::Void => ("void".into(), String::new()),
            Kind::Int { .. } | Kind::Float => (t.name.clone(), String::new()),
            Kind::Ptr(to) => {
                let pointee = self.btf.resolve(*to).map(|(_, t)| &t.kind);
                if matches!(pointee, Some(Kind::FuncProto { .. }) | None) {
                    return ("void *".into(), String::new());
                }
                let (s, suffix) = self.spec(*to, depth + 1);
                if !suffix.is_empty() {
                    return ("void *".into(), String::new());
                }
                (format!("{s} *"), String::new())
            }
            Kind::Array { elem, len, .. } => {
                let (s, suffix) = self.spec(*elem, depth + 1);
                (s, format!("[{len}]{suffix}"))
            }
            Kind::Struct(_) | Kind::Union(_) | Kind::Enum { .. } => {
                let word = match t.kind {
                    Kind::Struct(_) => "struct",
                    Kind::Union(_) => "union",
                    _ => "enum",
                };
                if t.name.is_empty() {
                    (self.body(id, depth + 1), String::new())
                } else {
                    self.define(id, depth);
                    (format!("{word} {}", t.name), String::new())
                }
            }
            Kind::Fwd { union } => (
                format!("{} {}", if *union { "union" } else { "struct" }, t.name),
                String::new(),
            ),
            Kind::Typedef(_) => {
                if !is_builtin_name(&t.name) {
                    self.define(id, depth);
                }
                (t.name.clone(), String::new())
            }
            Kind::Volatile(to) | Kind::Const(to) | Kind::Restrict(to) | Kind::TypeTag(to) => {
                self.spec(*to, depth + 1)
            }
            _ => ("void *".into(), String::new()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::super::decl::Builder;
    use super::*;

    fn round_trip(src: &str) -> String {
        let mut b = Builder::new();
        let id = b.declare(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let text = declaration(b.btf(), id);
        // What we print, the parser takes back, with the same layout.
        let mut again = Builder::new();
        let id2 = again
            .declare(&text)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(b.btf().size_of(id), again.btf().size_of(id2), "{text}");
        assert_eq!(declaration(again.btf(), id2), text);
        text
    }

    #[test]
    fn renders_what_was_declared() {
        assert_eq!(round_trip("__u64"), "__u64");
        assert_eq!(round_trip("char [16]"), "char[16]");
        assert_eq!(
            round_trip("struct flow { __u32 saddr; __u16 sport; __u8 proto; }"),
            "struct flow { __u32 saddr; __u16 sport; __u8 proto; }"
        );
        assert_eq!(
            round_trip("struct s { __u64 a; }; struct v { struct s x, y; struct { bool on; } anon; unsigned int f: 3; void *p; char n[2][3]; }"),
            "struct s { __u64 a; }; struct v { struct s x; struct s y; struct { _Bool on; } anon; unsigned int f: 3; void *p; char n[2][3]; }"
        );
        assert_eq!(
            round_trip("enum dir { IN, OUT }; typedef struct { enum dir d; } wrap_t; wrap_t"),
            "enum dir { IN = 0, OUT = 1 }; typedef struct { enum dir d; } wrap_t; wrap_t"
        );
        assert_eq!(
            round_trip("union u { __u32 x; __u8 b[4]; }"),
            "union u { __u32 x; __u8 b[4]; }"
        );
    }
}
