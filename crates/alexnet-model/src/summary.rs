//! What `alexnet info` prints: each layer's output shape, parameters and multiply-adds per image.

use crate::alexnet::{LayerTable, layer_table};
use crate::config::{ModelConfig, ModelError};

#[derive(Debug, Clone, PartialEq)]
pub struct LayerSummary {
    pub name: String,
    /// What the layer is, e.g. `96@11x11/4 pad 2, LRN, pool 3/2`.
    pub description: String,
    /// `[channels, height, width]` or `[features]`.
    pub output_shape: Vec<usize>,
    pub params: usize,
    pub multiply_adds: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    pub layers: Vec<LayerSummary>,
}

impl ModelSummary {
    pub fn params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }
    pub fn multiply_adds(&self) -> usize {
        self.layers.iter().map(|l| l.multiply_adds).sum()
    }
}

pub fn summarize(config: &ModelConfig) -> Result<ModelSummary, ModelError> {
    config.validate()?;
    let LayerTable { convs, fcs } = layer_table(config)?;
    let mut layers = Vec::new();
    for c in &convs {
        let conv_side = (c.input_side + 2 * c.padding - c.kernel) / c.stride + 1;
        let weights_per_output = c.in_channels / c.groups * c.kernel * c.kernel;
        let mut description = format!(
            "{}@{}x{}/{} pad {}",
            c.out_channels, c.kernel, c.kernel, c.stride, c.padding
        );
        if c.groups > 1 {
            description += &format!(", {} towers", c.groups);
        }
        if c.lrn {
            description += ", LRN";
        }
        if let Some((window, stride)) = c.pool {
            description += &format!(", pool {window}/{stride}");
        }
        layers.push(LayerSummary {
            name: c.name.to_string(),
            description,
            output_shape: vec![c.out_channels, c.output_side, c.output_side],
            params: c.out_channels * weights_per_output + c.out_channels,
            multiply_adds: c.out_channels * conv_side * conv_side * weights_per_output,
        });
    }
    for f in &fcs {
        let mut description = format!("{} -> {}", f.inputs, f.outputs);
        if f.hidden && config.dropout > 0.0 {
            description += &format!(", dropout {}", config.dropout);
        }
        layers.push(LayerSummary {
            name: f.name.to_string(),
            description,
            output_shape: vec![f.outputs],
            params: f.inputs * f.outputs + f.outputs,
            multiply_adds: f.inputs * f.outputs,
        });
    }
    Ok(ModelSummary { layers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;

    #[test]
    fn counts_agree_with_the_built_network_and_torchvision() {
        let owt = summarize(&ModelConfig::new(Arch::AlexnetOwt, 1000)).unwrap();
        assert_eq!(owt.params(), 61_100_840);
        // torchvision lists alexnet at 0.714 GFLOPs (multiply-adds) per 224x224 image.
        let gmacs = owt.multiply_adds() as f64 / 1e9;
        assert!((gmacs - 0.714).abs() < 0.001, "{gmacs}");
        let paper = summarize(&ModelConfig::default()).unwrap();
        assert_eq!(paper.params(), 60_965_224);
        assert_eq!(paper.layers[0].output_shape, vec![96, 27, 27]);
    }
}
