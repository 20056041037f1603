//! `echoseg export`: the committee mask of one configuration of a finished study for every
//! image of the study, with its confidence, in the folder layout.

use std::path::PathBuf;

use anyhow::{Context, Result};
use echoseg_nets::DeviceChoice;
use echoseg_study::StudyDir;
use echoseg_study::plan::strategy::PseudoLabels;
use echoseg_study::run::finish::Invocation;
use echoseg_study::take_home::export::{ExportChoice, export};
use indicatif::{ProgressBar, ProgressStyle};

/// The command-line options of `echoseg export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The study name (its directory under REPORTS).
    name: String,
    /// Directory that holds the reports.
    #[arg(long, default_value = "reports")]
    reports: PathBuf,
    /// Output directory: OUT/masks/committee/NAME.png, OUT/confidence/NAME.png, OUT/images/ (generated images) and OUT/export.json.
    #[arg(long)]
    out: PathBuf,
    /// The configuration's generation (with --strategy); default: the configuration whose
    /// committee mask agrees best with the validation images' source labels.
    #[arg(long, requires = "strategy")]
    generation: Option<u32>,
    /// The configuration's strategy: `labels` (generation 0), `self`, `cross`, …
    #[arg(long, requires = "generation")]
    strategy: Option<String>,
    /// The configuration's selection (default `all`).
    #[arg(long, default_value = "all")]
    selection: String,
    /// The configuration's pseudo-label mode: replace or accumulate (studies with `study.pseudo_labels`).
    #[arg(long, value_parser = parse_pseudo_labels, default_value = "replace")]
    pseudo_labels: PseudoLabels,
    /// Compute device: flex (CPU) or wgpu (GPU).
    #[arg(long, value_parser = crate::parse_device, default_value = "flex")]
    device: DeviceChoice,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_pseudo_labels(name: &str) -> Result<PseudoLabels, String> {
    let allowed = PseudoLabels::ALL.map(PseudoLabels::name).join(", ");
    PseudoLabels::from_name(name).ok_or_else(|| format!("`{name}` is no pseudo-label mode (allowed: {allowed})"))
}

/// Runs `echoseg export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let dir = StudyDir::new(&args.reports, &args.name);
    // The manifest as the study ran it (its own path, so a folder's relative path still resolves);
    // a study run before that was recorded falls back to the copy in its report.
    let manifest = match Invocation::of_study(&dir) {
        Ok(invocation) => invocation.load()?,
        Err(_) => echoseg_study::plan::manifest::load(&dir.manifest_copy())
            .with_context(|| format!("{} holds no finished study: run `echoseg run MANIFEST` first", dir.root().display()))?,
    };
    let choice = match (args.generation, args.strategy) {
        (Some(generation), Some(strategy)) => {
            ExportChoice::Named { generation, strategy, selection: args.selection, pseudo_labels: args.pseudo_labels }
        }
        _ => ExportChoice::BestValidation,
    };
    let device = args.device.open()?;
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    if let Ok(style) = ProgressStyle::with_template("exporting {bar:40} {pos}/{len} images, {eta} left") {
        bar.set_style(style);
    }
    let summary = export(&manifest, &dir, &choice, &args.out, &device, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("exporting study `{}`", args.name))?;
    bar.finish_and_clear();
    if !args.quiet {
        println!(
            "exported the committee mask of {} ({} runs) for {} images into {}",
            summary.configuration,
            summary.runs.len(),
            summary.images,
            args.out.display()
        );
        println!("chosen: {}", summary.chosen);
        for (name, miou) in &summary.validation_miou {
            println!("  validation mIoU against the source labels: {miou:.3}  {name}");
        }
        if let Some(miou) = summary.truth_miou {
            println!("against the truth of {} images: mIoU {miou:.3}", summary.truth_images);
        }
    }
    Ok(())
}
