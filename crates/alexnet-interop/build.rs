//! The ONNX protobuf types, generated from onnx.proto (copied from the `onnx` Python package,
//! Apache-2.0) by prost. protox compiles the .proto file in Rust, so no `protoc` is needed.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"]).expect("onnx.proto compiles");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("prost generates the ONNX types");
}
