//! Compiles the BPF C programs under `bpf/` with clang into `$OUT_DIR/<name>.bpf.o`.
//!
//! `bpf_helpers.h` comes from Debian's libbpf-dev (see scripts/setup.sh); `asm/types.h` and
//! friends from the multiarch include directory of the target.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        other => other,
    };
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=bpf");
    let mut sources: Vec<PathBuf> = std::fs::read_dir("bpf")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
                .collect()
        })
        .unwrap_or_default();
    sources.sort();
    for src in sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let file = src.file_name().map(|f| f.to_string_lossy().into_owned());
        let stem = file
            .as_deref()
            .and_then(|f| f.strip_suffix(".c"))
            .unwrap_or("prog.bpf");
        let obj = out.join(format!("{stem}.o"));
        let status = Command::new(&clang)
            .args(["-g", "-O2", "-Wall", "-target", "bpf"])
            .arg(format!("-D__TARGET_ARCH_{}", bpf_arch(&arch)))
            .arg(format!("-I/usr/include/{multiarch}"))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => fail(&format!("{clang} failed on {} ({s})", src.display())),
            Err(e) => fail(&format!(
                "cannot run {clang} ({e}): run scripts/setup.sh (needs clang and libbpf-dev)"
            )),
        }
    }
}

fn bpf_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "powerpc64" => "powerpc",
        other => other,
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
