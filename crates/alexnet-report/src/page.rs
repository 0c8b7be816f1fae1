//! `report.html`: what the page shows, as data, rendered through the template in
//! `templates/report.html` with minijinja (HTML escaping on, since the template's name ends in
//! `.html`). The page has no script and loads nothing but the PNG files beside it.

use minijinja::Environment;
use serde::Serialize;

use crate::error::ReportError;

const TEMPLATE: &str = include_str!("../templates/report.html");

/// A PNG file beside the page, with its size in pixels.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Picture {
    /// Relative to the page.
    pub file: String,
    pub width: u32,
    pub height: u32,
}

/// One row of the header table; `id` lets a reader (or a test) find a number.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderRow {
    pub id: String,
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelGrid {
    pub name: String,
    pub first: usize,
    pub last: usize,
    pub colour_share: String,
    pub picture: Picture,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelSection {
    pub count: usize,
    pub side: usize,
    pub grids: Vec<KernelGrid>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub name: String,
    pub percent: String,
    pub percent_text: String,
    pub is_true: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NeighbourTile {
    pub name: String,
    pub distance: String,
    pub picture: Picture,
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub true_name: String,
    pub right: bool,
    pub picture: Picture,
    pub bars: Vec<Bar>,
    pub neighbours: Vec<NeighbourTile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub title: String,
    pub run_dir: String,
    pub written: String,
    pub checkpoint: String,
    pub checkpoint_epoch: usize,
    pub split: String,
    pub header: Vec<HeaderRow>,
    pub still_training: bool,
    pub curves: Picture,
    pub confusion: Picture,
    pub per_class: Picture,
    pub kernels: KernelSection,
    pub seed: u64,
    pub hidden_width: usize,
    /// Why there are no neighbours, when there are none.
    pub neighbours_note: Option<String>,
    /// How many of the neighbours shown share their image's true class, of how many.
    pub neighbours_sharing: Option<(usize, usize)>,
    pub examples: Vec<Example>,
    pub recipe: String,
}

impl Page {
    pub fn render(&self) -> Result<String, ReportError> {
        let template_error = |e: minijinja::Error| ReportError::Template(e.to_string());
        let mut environment = Environment::new();
        environment
            .add_template("report.html", TEMPLATE)
            .map_err(template_error)?;
        environment
            .get_template("report.html")
            .and_then(|template| template.render(minijinja::value::Serde(self)))
            .map_err(template_error)
    }

    /// Every picture the page shows.
    pub fn pictures(&self) -> Vec<&Picture> {
        let mut pictures = vec![&self.curves, &self.confusion, &self.per_class];
        pictures.extend(self.kernels.grids.iter().map(|g| &g.picture));
        for example in &self.examples {
            pictures.push(&example.picture);
            pictures.extend(example.neighbours.iter().map(|n| &n.picture));
        }
        pictures
    }
}
