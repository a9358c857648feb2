//! Wire types of the `bpfmap.v1` API, generated from `proto/bpfmap/v1/maps.proto`.
//!
//! Kept apart from the server and the client so that both speak exactly the same types,
//! and so that other programs can depend on the wire format alone.

/// `bpfmap.v1`: messages, `map_service_client` and `map_service_server`.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("bpfmap.v1");
}

/// The encoded `FileDescriptorSet` of `bpfmap.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bpfmap_v1_descriptor.bin"));

/// The fully qualified service name, `bpfmap.v1.MapService`.
pub const SERVICE_NAME: &str = "bpfmap.v1.MapService";

pub mod hex;
