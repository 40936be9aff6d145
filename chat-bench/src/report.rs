//! Figures beside their baselines: printed as they are measured, and gathered into the
//! machine-readable summary.

use std::path::Path;

use serde::Serialize;

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// A rate: operations or requests per second.
    Higher,
    /// A time or a size.
    Lower,
}

/// One measured figure and the baseline it is read against, both from the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The part of the benchmark: `store/sled`, `http/sqlite`, `peer/postgres`, …
    pub section: String,
    /// What was measured.
    pub name: String,
    /// The median.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
    /// What the figure is read against.
    pub baseline: String,
    /// The baseline's median, in the same unit.
    pub baseline_value: f64,
    /// The figure's speed as a share of the baseline's: above 1 is better than the
    /// baseline (for a rate `value / baseline`, for a time `baseline / value`).
    pub ratio: f64,
    /// Further detail (latency percentiles, errors), free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Everything measured in one run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The figures, in the order they were measured.
    pub figures: Vec<Figure>,
    /// Things worth knowing that are not a figure beside a baseline.
    pub notes: Vec<String>,
    #[serde(skip)]
    section: String,
}

impl Report {
    /// Starts a section: later figures belong to it.
    pub fn section(&mut self, name: &str) {
        println!("\n== {name}");
        self.section = name.to_owned();
    }

    /// Records and prints a figure beside its baseline.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        better: Better,
        baseline: impl Into<String>,
        baseline_value: f64,
        detail: impl Into<String>,
    ) {
        let ratio = match better {
            Better::Higher => value / baseline_value,
            Better::Lower => baseline_value / value,
        };
        let figure = Figure {
            section: self.section.clone(),
            name: name.into(),
            value,
            unit,
            better,
            baseline: baseline.into(),
            baseline_value,
            ratio,
            detail: detail.into(),
        };
        println!(
            "  {:<44} {:>10} {:<5} | {}: {:>10} | ×{:.2}{}{}",
            figure.name,
            number(value),
            unit,
            figure.baseline,
            number(baseline_value),
            ratio,
            if figure.detail.is_empty() { "" } else { "  " },
            figure.detail,
        );
        self.figures.push(figure);
    }

    /// Records and prints a note.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = format!("[{}] {}", self.section, text.into());
        println!("  note: {text}");
        self.notes.push(text);
    }

    /// Writes the summary as JSON, with `meta` describing the run.
    pub fn write_json(&self, path: &Path, meta: serde_json::Value) -> std::io::Result<()> {
        let summary =
            serde_json::json!({ "run": meta, "figures": self.figures, "notes": self.notes });
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
    }
}

/// A number printed with the precision it deserves.
fn number(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The median of `xs` (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The `p`-th percentile (0–100) of sorted `xs`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
