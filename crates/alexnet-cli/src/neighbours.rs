//! `alexnet neighbours RUN_DIR IMAGE...`: the training images whose last hidden layer is closest
//! to each image's (Section 6.1, Figure 4 right).

use std::path::PathBuf;

use alexnet_report::{SearchOptions, search};
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct NeighboursArgs {
    /// The run directory (its best checkpoint, else its last).
    run_dir: PathBuf,
    /// Images to look up.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many neighbours of each.
    #[arg(long, default_value_t = 6)]
    k: usize,
    /// A prepared data set whose training split to search (default: the run's own).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also write, for each image, a picture of it and its neighbours into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// ImageNet synset words file naming the classes.
    #[arg(long)]
    synset_words: Option<PathBuf>,
    #[arg(long, default_value = "flex")]
    backend: String,
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: NeighboursArgs) -> Result<()> {
    let options = SearchOptions {
        run_dir: args.run_dir,
        images: args.images,
        k: args.k,
        data: args.data,
        out: args.out,
        synset_words: args.synset_words,
        backend: args.backend,
        quiet: args.quiet,
    };
    let (found, built) = search(&options)?;
    if built && !options.quiet {
        eprintln!(
            "built the feature index: {}",
            options
                .run_dir
                .join(alexnet_report::neighbours::INDEX_FILE)
                .display()
        );
    }
    for image in &found {
        println!("{}", image.image.display());
        for (rank, (neighbour, class, name)) in image.neighbours.iter().enumerate() {
            println!(
                "  {:>2}. distance {:>9.3}  {class:<12} {name}",
                rank + 1,
                neighbour.distance
            );
        }
        if let Some(picture) = &image.picture {
            println!("  picture: {}", picture.display());
        }
    }
    Ok(())
}
