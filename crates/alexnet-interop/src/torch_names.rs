//! Our parameter paths and the names PyTorch gives the same network built as torchvision builds
//! its `alexnet`: `features` an `nn.Sequential` of (Conv2d, ReLU, [LocalResponseNorm], [MaxPool2d])
//! per convolutional layer, `classifier` one of (Dropout, Linear, ReLU) per hidden layer and a last
//! Linear. For `alexnet-owt` these are torchvision's own names (`features.0.weight`,
//! `features.3.weight`, ..., `classifier.1.weight`, `classifier.4.weight`, `classifier.6.weight`);
//! for the paper's net and `alexnet-cifar` they are what the same construction gives.
//!
//! Layouts: convolution weights are `[out, in / groups, k, k]` in both; a Linear weight is
//! `[out, in]` in PyTorch and `[in, out]` in Burn (transposed on the way in and out).

use alexnet_model::alexnet::{LayerTable, layer_table};
use alexnet_model::{ModelConfig, ModelError};

/// One learned layer: its two parameters under both names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchLayer {
    /// `conv1` ... `fc8`.
    pub layer: &'static str,
    /// Our path without `.weight` / `.bias`: `features.1.conv`, `classifier.0.linear`.
    pub ours: String,
    /// PyTorch's: `features.3`, `classifier.1`.
    pub torch: String,
    /// A Linear layer (its weight is transposed between the two).
    pub linear: bool,
}

/// Every learned layer of `config`'s network, in order.
pub fn torch_layers(config: &ModelConfig) -> Result<Vec<TorchLayer>, ModelError> {
    let LayerTable { convs, fcs } = layer_table(config)?;
    let mut layers = Vec::new();
    let mut index = 0;
    for (c, conv) in convs.iter().enumerate() {
        layers.push(TorchLayer {
            layer: conv.name,
            ours: format!("features.{c}.conv"),
            torch: format!("features.{index}"),
            linear: false,
        });
        // The convolution, its ReLU, then the optional LRN and pooling modules.
        index += 2 + usize::from(conv.lrn) + usize::from(conv.pool.is_some());
    }
    let mut index = 0;
    for (f, fc) in fcs.iter().enumerate() {
        // A hidden layer is (Dropout, Linear, ReLU): its Linear is the second module.
        let position = if fc.hidden { index + 1 } else { index };
        layers.push(TorchLayer {
            layer: fc.name,
            ours: format!("classifier.{f}.linear"),
            torch: format!("classifier.{position}"),
            linear: true,
        });
        index += 3;
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_model::Arch;

    fn torch_names(arch: Arch) -> Vec<String> {
        torch_layers(&ModelConfig::new(arch, 1000))
            .unwrap()
            .into_iter()
            .map(|l| l.torch)
            .collect()
    }

    #[test]
    fn alexnet_owt_has_torchvisions_names() {
        // torchvision.models.alexnet().state_dict().keys(), without .weight / .bias.
        assert_eq!(
            torch_names(Arch::AlexnetOwt),
            [
                "features.0",
                "features.3",
                "features.6",
                "features.8",
                "features.10",
                "classifier.1",
                "classifier.4",
                "classifier.6"
            ]
        );
        // The paper's net has an LRN module after the first two ReLUs.
        assert_eq!(
            torch_names(Arch::Alexnet)[..5],
            [
                "features.0",
                "features.4",
                "features.8",
                "features.10",
                "features.12"
            ]
        );
        let cifar = torch_layers(&ModelConfig::new(Arch::AlexnetCifar, 10)).unwrap();
        let pairs: Vec<(&str, &str)> = cifar
            .iter()
            .map(|l| (l.ours.as_str(), l.torch.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("features.0.conv", "features.0"),
                ("features.1.conv", "features.4"),
                ("features.2.conv", "features.8"),
                ("classifier.0.linear", "classifier.1"),
                ("classifier.1.linear", "classifier.3")
            ]
        );
    }
}
