//! Shell-style globs for policy rules: `*` matches any run of characters (including '/'),
//! `?` exactly one. Nothing else is special, so pins and SPIFFE ids match as written.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        // '*' first: a literal '*' in the text must not consume the pattern's wildcard.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("agent-*", "agent-1"));
        assert!(!matches("agent-*", "xagent-1"));
        assert!(matches("spiffe://fleet/*", "spiffe://fleet/a/b"));
        assert!(matches("public/*", "public/x"));
        assert!(!matches("public/*", "private/x"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*", ""));
        assert!(matches("*x*y*", "axbyc"));
        assert!(!matches("", "a"));
        // A literal '*' in the text is just a character.
        assert!(matches("secret*", "secret*x"));
        assert!(matches("*x", "*ax"));
        assert!(matches("a*b", "a*zb"));
    }
}
