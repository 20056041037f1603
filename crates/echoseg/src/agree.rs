//! `echoseg agree`: agreement, kappa and STAPLE for segmentations made anywhere (and, with
//! truth, the truth scores), read from grey PNG masks of class indices.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use echoseg_agree::{ClassSurface, RaterAnalysis, Staple, StapleConfig, Who, analyse_raters, class_surfaces, staple};
use echoseg_scene::LabelMap;
use echoseg_scene::png::{read_label_map, write_label_map};
use rayon::prelude::*;
use serde::Serialize;

/// The command-line options of `echoseg agree`.
#[derive(Debug, clap::Args)]
pub struct AgreeArgs {
    /// Mask files, one per rater, all of one image (grey PNG whose values are class indices).
    #[arg(required_unless_present = "dirs")]
    masks: Vec<PathBuf>,
    /// Directories, one per rater, holding one mask per image; images are matched by file name.
    #[arg(long, num_args = 2.., conflicts_with = "masks", value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Truth: a mask file (with MASK...) or a directory (with --dirs).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Number of classes (default: the largest value in any mask plus one).
    #[arg(long)]
    classes: Option<usize>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write STAPLE's consensus masks to this directory (same file names).
    #[arg(long, value_name = "DIR")]
    consensus: Option<PathBuf>,
    /// Tolerance in px of the normalised surface Dice (with --truth).
    #[arg(long, default_value_t = echoseg_agree::SURFACE_TOLERANCE)]
    tolerance: f64,
}

/// Every rater's masks, image by image, with the files they came from.
struct Masks {
    raters: Vec<String>,
    names: Vec<String>,
    /// `maps[j][i]`: rater j's map of image i.
    maps: Vec<Vec<LabelMap>>,
    files: Vec<Vec<PathBuf>>,
    truth: Option<(Vec<LabelMap>, Vec<PathBuf>)>,
}

#[derive(Serialize)]
struct Output<'a> {
    raters: &'a [String],
    images: usize,
    pixels: usize,
    classes: usize,
    analysis: &'a RaterAnalysis,
    staple: &'a Staple,
    staple_consensus_vs_truth: Option<ConsensusScores>,
    /// `surface[rater][class − 1]`, with truth.
    surface: Option<&'a [Vec<ClassSurface>]>,
    surface_tolerance: f64,
}

#[derive(Serialize)]
struct ConsensusScores {
    miou: f64,
    accuracy: f64,
}

fn read_all(files: &[PathBuf]) -> Result<Vec<LabelMap>> {
    files.par_iter().map(|f| read_label_map(f).map_err(anyhow::Error::from)).collect()
}

fn mask_names(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read the mask directory {}", dir.display()))?;
    let mut names = BTreeMap::new();
    for entry in entries {
        let path = entry?.path();
        let is_mask = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_mask && let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            names.insert(stem.to_string(), path);
        }
    }
    if names.is_empty() {
        bail!("{} holds no .png mask files", dir.display());
    }
    Ok(names)
}

fn load(args: &AgreeArgs) -> Result<Masks> {
    if !args.dirs.is_empty() {
        let listed: Vec<BTreeMap<String, PathBuf>> = args.dirs.iter().map(|d| mask_names(d)).collect::<Result<_>>()?;
        let names: Vec<String> = listed[0].keys().cloned().collect();
        for (dir, list) in args.dirs.iter().zip(&listed).skip(1) {
            if let Some(extra) = list.keys().find(|n| !listed[0].contains_key(*n)) {
                bail!(
                    "{} has no counterpart in {}: every directory needs the same file names",
                    list[extra].display(),
                    args.dirs[0].display()
                );
            }
            if let Some(missing) = names.iter().find(|n| !list.contains_key(*n)) {
                bail!(
                    "{} has no counterpart in {}: every directory needs the same file names",
                    listed[0][missing].display(),
                    dir.display()
                );
            }
        }
        let files: Vec<Vec<PathBuf>> = listed.iter().map(|l| names.iter().map(|n| l[n].clone()).collect()).collect();
        let truth = match &args.truth {
            None => None,
            Some(dir) => {
                let list = mask_names(dir)?;
                let files: Vec<PathBuf> = names
                    .iter()
                    .map(|n| {
                        list.get(n).cloned().with_context(|| format!("{} has no truth mask in {}", listed[0][n].display(), dir.display()))
                    })
                    .collect::<Result<_>>()?;
                Some((read_all(&files)?, files))
            }
        };
        let maps = files.iter().map(|f| read_all(f)).collect::<Result<_>>()?;
        let raters = args.dirs.iter().map(|d| d.display().to_string()).collect();
        Ok(Masks { raters, names, maps, files, truth })
    } else {
        if args.masks.len() < 2 {
            bail!("agreement needs two or more masks (or --dirs DIR DIR ...), got {}", args.masks.len());
        }
        let files: Vec<Vec<PathBuf>> = args.masks.iter().map(|m| vec![m.clone()]).collect();
        let maps = files.iter().map(|f| read_all(f)).collect::<Result<_>>()?;
        let truth = match &args.truth {
            None => None,
            Some(t) => Some((read_all(std::slice::from_ref(t))?, vec![t.clone()])),
        };
        let name = args.masks[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let raters = args.masks.iter().map(|m| m.display().to_string()).collect();
        Ok(Masks { raters, names: vec![name], maps, files, truth })
    }
}

/// The file behind an analysis error, so the message names it.
fn file_of(masks: &Masks, who: Who, image: usize) -> PathBuf {
    match who {
        Who::Rater(j) => masks.files[j][image].clone(),
        Who::Truth => masks.truth.as_ref().map(|(_, f)| f[image].clone()).unwrap_or_default(),
    }
}

/// Runs `echoseg agree`.
pub fn run(args: AgreeArgs) -> Result<()> {
    if args.tolerance.is_nan() || args.tolerance < 0.0 {
        bail!("--tolerance {} is not a distance: give 0 or more pixels", args.tolerance);
    }
    let masks = load(&args)?;
    // Sizes are checked per file here so that the error names it.
    for (j, rater) in masks.maps.iter().enumerate() {
        for (i, map) in rater.iter().enumerate() {
            let first = &masks.maps[0][i];
            if (map.width, map.height) != (first.width, first.height) {
                bail!(
                    "{} is {}×{} px but {} is {}×{}",
                    masks.files[j][i].display(),
                    map.width,
                    map.height,
                    masks.files[0][i].display(),
                    first.width,
                    first.height
                );
            }
        }
    }
    if let Some((truth, files)) = &masks.truth {
        for (i, t) in truth.iter().enumerate() {
            let first = &masks.maps[0][i];
            if (t.width, t.height) != (first.width, first.height) {
                bail!(
                    "{} is {}×{} px but {} is {}×{}",
                    files[i].display(),
                    t.width,
                    t.height,
                    masks.files[0][i].display(),
                    first.width,
                    first.height
                );
            }
        }
    }
    let largest = masks
        .maps
        .iter()
        .flatten()
        .chain(masks.truth.iter().flat_map(|(t, _)| t))
        .flat_map(|m| m.labels.iter().copied())
        .max()
        .unwrap_or(0);
    let classes = args.classes.unwrap_or(usize::from(largest) + 1).max(2);

    let raters: Vec<Vec<&[u8]>> = masks.maps.iter().map(|r| r.iter().map(|m| m.labels.as_slice()).collect()).collect();
    let truth: Option<Vec<&[u8]>> = masks.truth.as_ref().map(|(t, _)| t.iter().map(|m| m.labels.as_slice()).collect());
    let named = |e: echoseg_agree::AgreeError| match e {
        echoseg_agree::AgreeError::Label { who, image, value, classes } => {
            anyhow::anyhow!(
                "{}: value {value} is not a class (--classes {classes} allows 0..{})",
                file_of(&masks, who, image).display(),
                classes - 1
            )
        }
        other => anyhow::Error::from(other),
    };
    let analysis = analyse_raters(&raters, truth.as_deref(), classes).map_err(named)?;
    let estimate = staple(&raters, classes, &StapleConfig::default()).map_err(named)?;
    let consensus: Vec<Vec<u8>> =
        (0..masks.names.len()).into_par_iter().map(|i| estimate.consensus_map(&raters.iter().map(|r| r[i]).collect::<Vec<_>>())).collect();
    let consensus_scores = truth.as_ref().map(|t| {
        let s = echoseg_agree::truth_scores(&consensus.iter().map(Vec::as_slice).collect::<Vec<_>>(), t, classes);
        ConsensusScores { miou: s.miou, accuracy: s.accuracy }
    });
    if let Some(dir) = &args.consensus {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for ((name, map), reference) in masks.names.iter().zip(&consensus).zip(&masks.maps[0]) {
            let path = dir.join(format!("{name}.png"));
            let out = LabelMap { width: reference.width, height: reference.height, labels: map.clone() };
            write_label_map(&path, &out)?;
        }
    }

    let sizes: Vec<(usize, usize)> = masks.maps[0].iter().map(|m| (m.width, m.height)).collect();
    let surface =
        truth.as_ref().map(|t| raters.par_iter().map(|r| class_surfaces(r, t, &sizes, classes, args.tolerance)).collect::<Vec<_>>());
    let pixels: usize = raters[0].iter().map(|m| m.len()).sum();
    if args.json {
        let output = Output {
            raters: &masks.raters,
            images: masks.names.len(),
            pixels,
            classes,
            analysis: &analysis,
            staple: &estimate,
            staple_consensus_vs_truth: consensus_scores,
            surface: surface.as_deref(),
            surface_tolerance: args.tolerance,
        };
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(());
    }
    print_tables(&masks.raters, masks.names.len(), pixels, classes, &analysis, &estimate, consensus_scores.as_ref());
    if let Some(surface) = &surface {
        print_surface(&masks.raters, surface, args.tolerance);
    }
    Ok(())
}

fn matrix(title: &str, labels: &[String], value: impl Fn(usize, usize) -> String) {
    println!("\n{title}");
    for (a, label) in labels.iter().enumerate() {
        let row: Vec<String> = (0..labels.len()).map(|b| format!("{:>7}", value(a, b))).collect();
        println!("  {:>3} {}  {label}", a + 1, row.join(" "));
    }
}

fn print_tables(
    raters: &[String],
    images: usize,
    pixels: usize,
    classes: usize,
    a: &RaterAnalysis,
    s: &Staple,
    consensus: Option<&ConsensusScores>,
) {
    println!("{} raters, {images} image(s), {pixels} pixels, {classes} classes", raters.len());
    matrix("pixel agreement", raters, |x, y| format!("{:.4}", a.agreement[x][y]));
    matrix("Cohen's kappa", raters, |x, y| format!("{:.4}", a.kappa[x][y]));
    println!("\nFleiss' kappa {:.4}; mean vote entropy {:.4} nats", a.fleiss_kappa, a.mean_vote_entropy);
    println!(
        "\nSTAPLE ({} iteration(s){}): per rater, sensitivity / specificity of each class",
        s.iterations,
        if s.converged { ", converged" } else { ", stopped at the iteration limit" }
    );
    for (j, name) in raters.iter().enumerate() {
        let cells: Vec<String> = (0..classes).map(|c| format!("{}: {:.3}/{:.3}", c, s.sensitivity[j][c], s.specificity[j][c])).collect();
        println!("  {:>3} {}  {name}", j + 1, cells.join("  "));
    }
    if let Some(t) = &a.truth {
        println!("\nagainst truth");
        for (j, name) in raters.iter().enumerate() {
            println!("  {:>3} mIoU {:.4}  accuracy {:.4}  {name}", j + 1, t.miou[j], t.accuracy[j]);
        }
        if let Some(c) = consensus {
            println!("  STAPLE consensus: mIoU {:.4}  accuracy {:.4}", c.miou, c.accuracy);
        }
        matrix("phi correlation of per-pixel errors (shared bias)", raters, |x, y| {
            t.error_phi[x][y].map_or("-".into(), |v| format!("{v:.3}"))
        });
        println!("\ndisagreement vs mean error per pair (equal when disagreement predicts error)");
        for p in &t.disagreement_vs_error {
            println!("  {} × {}: disagreement {:.4}, mean error {:.4}", p.a + 1, p.b + 1, p.disagreement, p.mean_error);
        }
    } else {
        println!("\nno truth given: the STAPLE sensitivities above are the estimate of each rater's quality");
    }
}

fn print_surface(raters: &[String], surface: &[Vec<ClassSurface>], tolerance: f64) {
    println!(
        "\nsurface metrics against truth, per class (means over images; distances in px; surface Dice within {tolerance} px; \
         an image where exactly one mask has the class counts at the worst values: distances the image's diagonal, Dice 0)"
    );
    for (j, (name, classes)) in raters.iter().zip(surface).enumerate() {
        for c in classes {
            let empty =
                if c.empty > 0 { format!("  ({} image(s) with one mask empty, at the worst values)", c.empty) } else { String::new() };
            println!(
                "  {:>3} class {}: HD95 {:.2}  ASSD {:.2} (ASD {:.2} / {:.2})  surface Dice {:.3}  clDice {:.3}{empty}  {name}",
                j + 1,
                c.class,
                c.mean.hd95,
                c.mean.assd,
                c.mean.asd,
                c.mean.asd_reverse,
                c.mean.surface_dice,
                c.mean.cl_dice
            );
        }
    }
}
