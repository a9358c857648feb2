//! Compiles `bpfmap/v1/maps.proto` in Rust (protox): no system `protoc` is needed.
//! The encoded descriptor set is kept for server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=bpfmap/v1/maps.proto");
    let fds = protox::compile(["bpfmap/v1/maps.proto"], ["."])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("bpfmap_v1_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .bytes(".bpfmap.v1")
        .compile_fds(fds)?;
    Ok(())
}
