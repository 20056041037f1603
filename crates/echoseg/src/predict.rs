//! `echoseg predict`: segments new images with a study's trained network and writes the masks
//! (grey PNG of class indices, the folder layout's mask format) and 8-bit confidence maps.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use echoseg_nets::DeviceChoice;
use echoseg_scene::png::{BitDepth, read_image_with_depth, write_label_map};
use echoseg_scene::{LabelMap, image_name, is_image_file};
use echoseg_study::take_home::predict::load_trained;
use indicatif::{ProgressBar, ProgressStyle};

/// The command-line options of `echoseg predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The finished run whose network segments: reports/NAME/runs/RUN.
    #[arg(long)]
    model: PathBuf,
    /// Image files (PNG, JPEG, TIFF) or directories of them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Directory for the masks (OUT/NAME.png) and confidence maps (OUT/confidence/NAME.png).
    #[arg(long)]
    out: PathBuf,
    /// Compute device: flex (CPU) or wgpu (GPU).
    #[arg(long, value_parser = crate::parse_device, default_value = "flex")]
    device: DeviceChoice,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

/// Images segmented per pass: bounds the memory whatever the number of images.
const CHUNK: usize = 32;

/// The image files of `inputs`, directories expanded (their images sorted by name).
fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read the directory {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image_file(p))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{} holds no images (PNG, JPEG or TIFF)", input.display());
            }
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            bail!("{} is neither an image file nor a directory", input.display());
        }
    }
    let mut stems: Vec<String> = files.iter().map(|f| image_name(f)).collect();
    stems.sort();
    if let Some(w) = stems.windows(2).find(|w| w[0] == w[1]) {
        bail!("two inputs are named `{}`: their masks would overwrite each other in one output directory", w[0]);
    }
    Ok(files)
}

/// Runs `echoseg predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let files = image_files(&args.inputs)?;
    let out = std::fs::canonicalize(&args.out).ok();
    if let Some(input) = args.inputs.iter().find(|i| i.is_dir() && std::fs::canonicalize(i).ok() == out) {
        bail!("--out {} is an input directory: its masks would overwrite the images; write them elsewhere", input.display());
    }
    let device = args.device.open()?;
    let model = load_trained(&args.model, &device)?;
    let confidence_dir = args.out.join("confidence");
    std::fs::create_dir_all(&confidence_dir).with_context(|| format!("cannot create {}", confidence_dir.display()))?;
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(files.len() as u64) };
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} images, {eta} left") {
        bar.set_style(style);
    }
    bar.set_message(format!("segmenting with {}", model.run));
    for chunk in files.chunks(CHUNK) {
        let mut images = Vec::with_capacity(chunk.len());
        for file in chunk {
            let (image, depth) = read_image_with_depth(file)?;
            if depth == BitDepth::Deep {
                // The study stretched its deep images by their brightest value as one set; which
                // factor fits these images is not known here, so guessing one would shift them.
                bail!(
                    "{}: images deeper than 8 bits are not supported by predict yet; convert them to 8 bits as the study saw them",
                    file.display()
                );
            }
            images.push(image);
        }
        let refs: Vec<_> = images.iter().collect();
        let probabilities = model.segment(&refs, chunk, &device)?;
        for ((file, image), p) in chunk.iter().zip(&images).zip(&probabilities) {
            let name = format!("{}.png", image_name(file));
            let (width, height) = (image.width, image.height);
            let mask = LabelMap { width, height, labels: p.argmax() };
            write_label_map(&args.out.join(&name), &mask)?;
            let confidence = p.confidence().iter().map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8).collect();
            write_label_map(&confidence_dir.join(&name), &LabelMap { width, height, labels: confidence })?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if !args.quiet {
        println!(
            "segmented {} image(s) with run {} ({}, {} classes): masks in {}, confidence in {}",
            files.len(),
            model.run,
            model.spec.name(),
            model.spec.classes,
            args.out.display(),
            confidence_dir.display()
        );
    }
    Ok(())
}
