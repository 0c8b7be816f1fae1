//! An ONNX graph of any of our networks, for deployment (onnxruntime, TensorRT, OpenVINO ...).
//!
//! The graph is the layer list of Figure 2 at inference: Conv (grouped where the towers split),
//! Relu or Tanh, LRN, MaxPool, Flatten and Gemm; dropout is the identity there and is left out.
//! Its input `pixels` is a batch of RGB crops on 0..255, `[N, 3, S, S]`; the first node subtracts
//! the centre crop of the training set's mean image, so the graph does what `alexnet predict`
//! does to a centre crop. Its output `logits` is `[N, classes]` (the softmax is left to the user).
//!
//! ONNX's LRN divides alpha by the window size (as PyTorch does); the paper's does not, so the
//! graph carries `alpha * n`.

use alexnet_model::alexnet::{LayerTable, layer_table};
use alexnet_model::{Activation, ModelConfig};
use alexnet_run::Checkpoint;
use alexnet_run::checkpoint::NamedTensor;
use prost::Message;

use crate::InteropError;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_shape_proto, type_proto,
};

/// ONNX's operator set the graph is written against (LRN, Conv, MaxPool, Gemm are all older).
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17 (ONNX 1.12).
const IR_VERSION: i64 = 8;
const FLOAT: i32 = 1;

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn ints_attribute(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn float_attribute(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attributes: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attributes,
        ..Default::default()
    }
}

fn initializer(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(FLOAT),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A float tensor of shape `dims`, a `None` dimension named `batch`.
fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(size) => tensor_shape_proto::dimension::Value::DimValue(*size as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(FLOAT),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The centre `crop x crop` of a `[3, side, side]` mean image, as `[1, 3, crop, crop]`.
fn centre_mean(mean_image: &[f32], side: usize, crop: usize) -> Vec<f32> {
    let offset = (side - crop) / 2;
    let mut out = Vec::with_capacity(3 * crop * crop);
    for c in 0..3 {
        for y in 0..crop {
            let row = (c * side + offset + y) * side + offset;
            out.extend_from_slice(&mean_image[row..row + crop]);
        }
    }
    out
}

/// The ONNX model of `checkpoint`'s network, as protobuf bytes.
pub fn onnx_model(checkpoint: &Checkpoint) -> Result<Vec<u8>, InteropError> {
    let config: &ModelConfig = &checkpoint.recipe.model;
    let LayerTable { convs, fcs } = layer_table(config)?;
    let weight = |path: String| -> Result<&NamedTensor, InteropError> {
        checkpoint
            .weights
            .iter()
            .find(|t| t.name == path)
            .ok_or_else(|| {
                InteropError::Checkpoint(alexnet_run::CheckpointError::Mismatch(format!(
                    "{path} is missing"
                )))
            })
    };
    let crop = config.input_size();
    let stats = &checkpoint.stats;
    let mut nodes = Vec::new();
    let mut initializers = vec![initializer(
        "mean_crop",
        &[1, 3, crop, crop],
        &centre_mean(&stats.mean_image, stats.side, crop),
    )];
    // data.normalize's per-channel scale, after the mean as in training (absent when it is 1).
    let scaled = stats.input_scale != [1.0; 3];
    let centred = if scaled { "centred" } else { "input" };
    nodes.push(node(
        "Sub",
        "subtract_mean",
        &["pixels", "mean_crop"],
        centred,
        vec![],
    ));
    if scaled {
        initializers.push(initializer(
            "input_scale",
            &[1, 3, 1, 1],
            &stats.input_scale,
        ));
        nodes.push(node(
            "Mul",
            "scale_channels",
            &[centred, "input_scale"],
            "input",
            vec![],
        ));
    }
    let activation = match config.activation {
        Activation::Relu => "Relu",
        Activation::Tanh => "Tanh",
    };
    let mut current = "input".to_string();
    for (c, conv) in convs.iter().enumerate() {
        let (w, b) = (
            weight(format!("features.{c}.conv.weight"))?,
            weight(format!("features.{c}.conv.bias"))?,
        );
        let (w_name, b_name) = (
            format!("{}.weight", conv.name),
            format!("{}.bias", conv.name),
        );
        initializers.push(initializer(&w_name, &w.shape, &w.values));
        initializers.push(initializer(&b_name, &b.shape, &b.values));
        let (k, s, p) = (conv.kernel as i64, conv.stride as i64, conv.padding as i64);
        nodes.push(node(
            "Conv",
            conv.name,
            &[&current, &w_name, &b_name],
            conv.name,
            vec![
                ints_attribute("kernel_shape", &[k, k]),
                ints_attribute("strides", &[s, s]),
                ints_attribute("pads", &[p, p, p, p]),
                int_attribute("group", conv.groups as i64),
            ],
        ));
        let number = &conv.name["conv".len()..];
        let relu = format!("{}{number}", activation.to_lowercase());
        nodes.push(node(activation, &relu, &[conv.name], &relu, vec![]));
        current = relu;
        if conv.lrn {
            let lrn = &config.lrn_params;
            let norm = format!("norm{number}");
            nodes.push(node(
                "LRN",
                &norm,
                &[&current],
                &norm,
                vec![
                    int_attribute("size", lrn.size as i64),
                    float_attribute("alpha", (lrn.alpha * lrn.size as f64) as f32),
                    float_attribute("beta", lrn.beta as f32),
                    float_attribute("bias", lrn.k as f32),
                ],
            ));
            current = norm;
        }
        if let Some((window, stride)) = conv.pool {
            let pool = format!("pool{number}");
            let (z, s) = (window as i64, stride as i64);
            nodes.push(node(
                "MaxPool",
                &pool,
                &[&current],
                &pool,
                vec![
                    ints_attribute("kernel_shape", &[z, z]),
                    ints_attribute("strides", &[s, s]),
                ],
            ));
            current = pool;
        }
    }
    nodes.push(node(
        "Flatten",
        "flatten",
        &[&current],
        "flatten",
        vec![int_attribute("axis", 1)],
    ));
    current = "flatten".into();
    for (f, fc) in fcs.iter().enumerate() {
        let (w, b) = (
            weight(format!("classifier.{f}.linear.weight"))?,
            weight(format!("classifier.{f}.linear.bias"))?,
        );
        let (w_name, b_name) = (format!("{}.weight", fc.name), format!("{}.bias", fc.name));
        // Burn's Linear weight is [in, out]: Gemm's B as it is (transB = 0).
        initializers.push(initializer(&w_name, &w.shape, &w.values));
        initializers.push(initializer(&b_name, &b.shape, &b.values));
        let output = if fc.hidden {
            fc.name.to_string()
        } else {
            "logits".into()
        };
        nodes.push(node(
            "Gemm",
            fc.name,
            &[&current, &w_name, &b_name],
            &output,
            vec![],
        ));
        current = output;
        if fc.hidden {
            let number = &fc.name["fc".len()..];
            let relu = format!("{}{number}", activation.to_lowercase());
            nodes.push(node(activation, &relu, &[&current], &relu, vec![]));
            current = relu;
        }
    }
    let graph = GraphProto {
        name: Some(config.arch.to_string()),
        node: nodes,
        initializer: initializers,
        input: vec![value_info(
            "pixels",
            &[None, Some(3), Some(crop), Some(crop)],
        )],
        output: vec![value_info("logits", &[None, Some(config.num_classes)])],
        doc_string: Some(format!(
            "{} ({} classes): pixels are RGB 0..255 crops of {crop}x{crop}; the mean image's \
             centre is subtracted in the graph",
            config.arch, config.num_classes
        )),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("alexnet".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_crop_is_the_centre_of_the_mean_image() {
        // side 4, crop 2: rows 1..3, columns 1..3 of each channel.
        let mean: Vec<f32> = (0..48).map(|v| v as f32).collect();
        assert_eq!(
            centre_mean(&mean, 4, 2),
            [
                5.0, 6.0, 9.0, 10.0, 21.0, 22.0, 25.0, 26.0, 37.0, 38.0, 41.0, 42.0
            ]
        );
    }
}
