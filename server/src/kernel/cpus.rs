//! The number of *possible* CPUs, which sizes every per-CPU value the kernel reads or writes
//! (not the online count: a CPU may come online later and still owns a slot).

use std::sync::OnceLock;

/// Number of possible CPUs, from `/sys/devices/system/cpu/possible` (read once).
pub fn possible_cpus() -> u32 {
    static CPUS: OnceLock<u32> = OnceLock::new();
    *CPUS.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| parse_cpu_list(s.trim()))
            .unwrap_or(1)
    })
}

/// Parses a kernel CPU list such as `0-3,8-11` into a count of CPUs (highest + 1).
fn parse_cpu_list(list: &str) -> Option<u32> {
    let mut max = None;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let last = part.rsplit('-').next()?;
        let n: u32 = last.trim().parse().ok()?;
        max = Some(max.map_or(n, |m: u32| m.max(n)));
    }
    max.map(|m| m + 1)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn parses_kernel_cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,8-11"), Some(12));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
