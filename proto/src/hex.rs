//! bpftool's byte syntax, shared by the daemon (input `Data.hex`) and the CLI (`--key HEX`).
//!
//! Accepted: `"c1 c2"`, `"c1c2"`, `"0xc1 0xc2"`, any case, bytes separated by white space or
//! run together (an odd digit count is an error). Output: lowercase bytes separated by single
//! spaces, as bpftool prints them.

use std::fmt;

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexError {
    /// What was wrong, in words a person can act on.
    pub reason: String,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for HexError {}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses bpftool-style hex into bytes.
///
/// ```
/// use bpfmap_proto::hex::parse;
/// assert_eq!(parse("c1 c2").unwrap(), vec![0xc1, 0xc2]);
/// assert_eq!(parse("0xC1 0xc2").unwrap(), vec![0xc1, 0xc2]);
/// assert_eq!(parse("c1c2").unwrap(), vec![0xc1, 0xc2]);
/// assert!(parse("c1 c").is_err());
/// ```
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    for word in text.split(|c: char| c.is_ascii_whitespace() || c == ',') {
        if word.is_empty() {
            continue;
        }
        let digits = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))
            .unwrap_or(word);
        if digits.is_empty() {
            return Err(HexError {
                reason: format!("bad hex {word:?}: no digits after 0x"),
            });
        }
        if digits.len() % 2 != 0 {
            return Err(HexError {
                reason: format!("bad hex {word:?}: odd number of digits (write each byte as two digits, e.g. \"0a\")"),
            });
        }
        for pair in digits.as_bytes().chunks(2) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => {
                    return Err(HexError {
                        reason: format!("bad hex {word:?}: only 0-9 and a-f are hex digits"),
                    })
                }
            }
        }
    }
    Ok(out)
}

/// Formats bytes as bpftool does: lowercase, separated by single spaces.
///
/// ```
/// assert_eq!(bpfmap_proto::hex::format(&[0xa1, 0x02]), "a1 02");
/// ```
pub fn format(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        for bytes in [
            vec![],
            vec![0u8],
            vec![0xde, 0xad, 0xbe, 0xef],
            (0..=255).collect(),
        ] {
            assert_eq!(parse(&format(&bytes)), Ok(bytes));
        }
        assert_eq!(
            parse("0x01 0x2 ").map_err(|e| e.reason.contains("odd")),
            Err(true)
        );
        assert!(parse("zz").is_err());
        assert!(parse("0x").is_err());
        assert_eq!(parse("  01,02  03").ok(), Some(vec![1, 2, 3]));
    }
}
