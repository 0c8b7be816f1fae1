//! Winograd's F(2x2, 3x3) against im2col on the 3x3 stride-1 layers (conv3-5), one pass at a
//! time: the forward pass and the input gradient, batch 32 (or the first argument), the two
//! kernels alternated, best of 10 each; and each kernel's worst error against the other, relative
//! to the output's largest. The kernels are called directly, so a batch too small for
//! `conv_winograd::pays` is timed too (that rule is this example's batch 1 and 8 rows).
//!
//!     cargo run --release -p alexnet-cli --example winograd [-- BATCH]

use alexnet_model::conv_im2col::{self, ConvGeometry, ConvParams};
use alexnet_model::conv_winograd;

mod common;
use common::{best_ms, values};

/// One pass of one kernel, its output flattened.
type Pass<'a> = Box<dyn Fn() -> Vec<f32> + 'a>;

fn worst_relative(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
        / scale
}

fn main() {
    let batch: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().expect("the batch size, a whole number"),
        None => 32,
    };
    println!("layer                 pass         im2col ms  winograd ms  speed-up  difference");
    // alexnet-owt's conv3-5 (one tower) and the paper's (conv4 and conv5 in two towers), 13x13.
    for (name, cin, cout, groups) in [
        ("owt conv3", 192, 384, 1),
        ("owt conv4", 384, 256, 1),
        ("owt conv5", 256, 256, 1),
        ("paper conv3", 256, 384, 1),
        ("paper conv4", 384, 384, 2),
        ("paper conv5", 384, 256, 2),
    ] {
        let geometry = ConvGeometry {
            input: [batch, cin, 13, 13],
            weight: [cout, cin / groups, 3, 3],
            params: ConvParams {
                stride: [1, 1],
                padding: [1, 1],
                groups,
                bf16: false,
                winograd: true,
            },
        };
        let x = values(batch * cin * 169, 1);
        let w: Vec<f32> = values(cout * cin / groups * 9, 2)
            .iter()
            .map(|v| v * 0.05)
            .collect();
        let b = values(cout, 3);
        let dy = values(batch * cout * 169, 4);
        let rows: [(&str, Pass, Pass); 2] = [
            (
                "forward",
                Box::new(|| conv_im2col::conv2d_forward(&x, &w, &b, &geometry)),
                Box::new(|| conv_winograd::conv2d_forward(&x, &w, &b, &geometry)),
            ),
            (
                "input grad",
                Box::new(|| conv_im2col::conv2d_input_grad(&w, &dy, &geometry)),
                Box::new(|| conv_winograd::conv2d_input_grad(&w, &dy, &geometry)),
            ),
        ];
        for (pass, im2col, winograd) in rows {
            let (mut direct_ms, mut winograd_ms) = (f64::MAX, f64::MAX);
            for _ in 0..2 {
                direct_ms = direct_ms.min(best_ms(&im2col));
                winograd_ms = winograd_ms.min(best_ms(&winograd));
            }
            let difference = worst_relative(&winograd(), &im2col());
            println!(
                "{name:<21} {pass:<12} {direct_ms:>9.2} {winograd_ms:>12.2} {:>9.2}x {difference:>11.1e}",
                direct_ms / winograd_ms
            );
        }
    }
}
