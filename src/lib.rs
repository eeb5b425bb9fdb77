//! Generated types for the `memstress.v1` gRPC API, shared by `stressd` and `stressctl`.

/// The `memstress.v1` package: messages, the `StressService` client and server.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("memstress.v1");
}

/// Encoded `FileDescriptorSet` of every proto in `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/memstress_descriptor.bin"));
