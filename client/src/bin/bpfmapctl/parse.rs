//! Parsers of command-line values: map references, map types, numbers and hex bytes.

use bpfmap_client::{parse_map_type, MapRef, MapType};

/// Parses a MAP argument.
pub fn parse_map_ref(s: &str) -> Result<MapRef, String> {
    s.parse::<MapRef>().map_err(|e| e.reason)
}

/// Parses a map type by name or number.
pub fn parse_type(s: &str) -> Result<MapType, String> {
    parse_map_type(s).ok_or_else(|| {
        format!("unknown map type {s:?}; e.g. hash, array, percpu_hash, lru_hash, lpm_trie, queue, stack, bloom_filter")
    })
}

/// Parses an unsigned integer: decimal, `0x` hex, `0o` octal or `0b` binary; `_` allowed.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h.to_owned(), 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o.to_owned(), 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b.to_owned(), 2)
    } else {
        (lower.clone(), 10)
    };
    u64::from_str_radix(&digits, radix)
        .map_err(|_| format!("{s:?} is not an unsigned integer (decimal or 0x hex)"))
}

/// [`parse_u64`] limited to 32 bits.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let n = parse_u64(s)?;
    u32::try_from(n).map_err(|_| format!("{s:?} does not fit in 32 bits"))
}

/// Bytes given in bpftool's hex syntax; a `--key c1 c2` gives one per word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

/// Parses one word (or quoted group) of bpftool hex.
pub fn parse_hex(s: &str) -> Result<Hex, String> {
    bpfmap_client::proto_crate::hex::parse(s)
        .map(Hex)
        .map_err(|e| e.reason)
}

/// The bytes of all words, in order.
pub fn concat(words: &[Hex]) -> Vec<u8> {
    words.iter().flat_map(|h| h.0.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_every_base() {
        assert_eq!(parse_u64("42"), Ok(42));
        assert_eq!(parse_u64("0x2A"), Ok(42));
        assert_eq!(parse_u64("0b101"), Ok(5));
        assert_eq!(parse_u64("1_000"), Ok(1000));
        assert!(parse_u64("-1").is_err());
        assert!(parse_u64("x").is_err());
        assert_eq!(parse_u32("0xffffffff"), Ok(u32::MAX));
        assert!(parse_u32("0x100000000").is_err());
    }

    #[test]
    fn hex_words_join() {
        let words = |v: &[&str]| {
            v.iter()
                .map(|s| parse_hex(s))
                .collect::<Result<Vec<_>, _>>()
        };
        assert_eq!(
            words(&["c1", "c2"]).map(|w| concat(&w)),
            Ok(vec![0xc1, 0xc2])
        );
        assert_eq!(
            words(&["0xc1 0xc2"]).map(|w| concat(&w)),
            Ok(vec![0xc1, 0xc2])
        );
        assert_eq!(words(&["C1c2"]).map(|w| concat(&w)), Ok(vec![0xc1, 0xc2]));
        assert!(words(&["c"]).is_err());
        assert!(words(&["zz"]).is_err());
    }
}
