//! Compiles the echo service of the gRPC floor (protox: no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    let fds = protox::compile(["echo.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".bench.v1")
        .compile_fds(fds)?;
    Ok(())
}
