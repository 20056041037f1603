//! `echoseg bench`: runs the nets crate's benchmark for each architecture and prints or writes it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use echoseg_nets::{Architecture, BenchCase, BenchResult, DeviceChoice, NetworkSpec, bench, gemm_gflops, reference_case};
use echoseg_study::run::provenance::{BURN_VERSION, git_revision, now_unix};
use echoseg_study::store::write_atomic;
use rayon::prelude::*;
use serde::Serialize;

/// The command-line options of `echoseg bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Architectures to measure (repeatable; default: all five).
    #[arg(long = "arch", value_parser = parse_architecture)]
    architectures: Vec<Architecture>,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Channels of the first level (default: 16, the reference case; other architectures scale from it).
    #[arg(long, default_value_t = 16)]
    width: usize,
    /// Timed steps per measurement.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Compute device: flex (CPU) or wgpu (GPU).
    #[arg(long, value_parser = super::parse_device, default_value = "flex")]
    device: DeviceChoice,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file (for example reports/bench.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure the agreement analyses instead of the networks: Mpixel/s of pairwise agreement +
    /// Cohen's kappa, of the five-rater analysis (all pairs, Fleiss' kappa, vote entropy) and of
    /// STAPLE, for 5 raters and 4 classes on this many Mpixel per rater.
    #[arg(long, value_name = "MPIXEL", num_args = 0..=1, default_missing_value = "10")]
    agree: Option<usize>,
}

fn parse_architecture(name: &str) -> Result<Architecture, String> {
    Architecture::ALL
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| format!("unknown architecture `{name}`; use one of {}", Architecture::ALL.map(Architecture::name).join(", ")))
}

/// What `--json` prints and `--out` writes.
#[derive(Debug, Serialize)]
struct BenchReport {
    echoseg_version: &'static str,
    burn_version: &'static str,
    git_revision: Option<String>,
    finished_unix: u64,
    device: &'static str,
    threads: usize,
    cpu: Option<String>,
    /// The machine's own rate of the kernels' matrix product (one 1024³ product per thread at
    /// once), measured in the same call: the ceiling each case's GFLOP/s is a share of.
    gemm_gflops: Option<f64>,
    results: Vec<BenchResult>,
    agreement: Option<AgreementBench>,
}

/// What `--agree` measured: seconds and Mpixel/s (pixels per rater) of each analysis.
#[derive(Debug, Serialize)]
struct AgreementBench {
    raters: usize,
    classes: usize,
    mpixels: f64,
    pair_agreement_kappa_s: f64,
    pair_agreement_kappa_mpixel_per_s: f64,
    all_raters_s: f64,
    all_raters_mpixel_per_s: f64,
    staple_s: f64,
    staple_mpixel_per_s: f64,
    staple_iterations: usize,
    /// Cohen's kappa of raters 1 and 2 and Fleiss' kappa of all five, to check against other tools.
    cohen_kappa: f64,
    fleiss_kappa: f64,
    /// Surface metrics of one large image (HD95, ASD both ways, ASSD, surface Dice, clDice).
    surface: Vec<SurfaceBench>,
}

/// One image of `side` × `side` px: a disc of radius 0.3 × side as the truth, the same with 10 %
/// of its pixels flipped as the rater (bench/surface_reference.py times medpy on the same kind).
#[derive(Debug, Serialize)]
struct SurfaceBench {
    side: usize,
    seconds: f64,
    hd95: f64,
    assd: f64,
}

/// Image sides of the surface cases: the sizes at which medpy was compared (bench/README.md).
const SURFACE_SIDES: [usize; 3] = [1000, 2000, 4200];

fn bench_surface(side: usize) -> SurfaceBench {
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ side as u64;
    let centre = (0.45 * side as f64, 0.5 * side as f64);
    let truth: Vec<bool> = (0..side * side)
        .map(|i| {
            let (dx, dy) = ((i % side) as f64 - centre.0, (i / side) as f64 - centre.1);
            dx * dx + dy * dy <= (0.3 * side as f64).powi(2)
        })
        .collect();
    let rater: Vec<bool> = truth
        .iter()
        .map(|&t| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            t != state.is_multiple_of(10)
        })
        .collect();
    let started = std::time::Instant::now();
    let scores = echoseg_agree::surface_scores(&rater, &truth, side, side, echoseg_agree::SURFACE_TOLERANCE);
    SurfaceBench { side, seconds: started.elapsed().as_secs_f64(), hd95: scores.hd95, assd: scores.assd }
}

/// Five raters' label maps of `images` 1000 × 1000 images with 4 classes: the truth is a tiling
/// of class regions; each rater shifts its boundaries by its own offset and flips 5 % of its
/// pixels at random, so the analyses see realistic, mostly agreeing maps.
fn agreement_maps(images: usize) -> Vec<Vec<Vec<u8>>> {
    const SIDE: usize = 1000;
    (0..5)
        .map(|rater| {
            (0..images)
                .into_par_iter()
                .map(|image| {
                    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ ((rater * 7919 + image) as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
                    let mut next = move || {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state
                    };
                    (0..SIDE * SIDE)
                        .map(|i| {
                            let (x, y) = (i % SIDE + rater, i / SIDE + image);
                            let class = ((x / 37 + y / 53) % 4) as u8;
                            if next() % 20 == 0 { (class + 1) % 4 } else { class }
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn bench_agreement(mpixels: usize) -> AgreementBench {
    let maps = agreement_maps(mpixels.max(1));
    let raters: Vec<Vec<&[u8]>> = maps.iter().map(|r| r.iter().map(Vec::as_slice).collect()).collect();
    let mp = (mpixels.max(1) * 1_000_000) as f64 / 1e6;
    let timed = |f: &dyn Fn()| {
        f();
        let started = std::time::Instant::now();
        f();
        started.elapsed().as_secs_f64()
    };
    let pair = timed(&|| {
        std::hint::black_box(echoseg_agree::pair_scores(&raters[0], &raters[1], 4));
    });
    let all = timed(&|| {
        std::hint::black_box(echoseg_agree::analyse_raters(&raters, None, 4).ok());
    });
    let config = echoseg_agree::StapleConfig::default();
    let staple = timed(&|| {
        std::hint::black_box(echoseg_agree::staple(&raters, 4, &config).ok());
    });
    let iterations = echoseg_agree::staple(&raters, 4, &config).map(|s| s.iterations).unwrap_or(0);
    let cohen_kappa = echoseg_agree::pair_scores(&raters[0], &raters[1], 4).kappa;
    let fleiss_kappa = echoseg_agree::analyse_raters(&raters, None, 4).map(|a| a.fleiss_kappa).unwrap_or(f64::NAN);
    AgreementBench {
        raters: 5,
        classes: 4,
        mpixels: mp,
        pair_agreement_kappa_s: pair,
        pair_agreement_kappa_mpixel_per_s: mp / pair,
        all_raters_s: all,
        all_raters_mpixel_per_s: mp / all,
        staple_s: staple,
        staple_mpixel_per_s: mp / staple,
        staple_iterations: iterations,
        cohen_kappa,
        fleiss_kappa,
        surface: SURFACE_SIDES.into_iter().map(bench_surface).collect(),
    }
}

/// Runs the benchmark the arguments describe.
pub fn run(args: BenchArgs) -> Result<()> {
    let device = args.device.open()?;
    let threads = super::configure_threads(args.threads);
    let reference = reference_case();
    let mut results = Vec::new();
    let agreement = args.agree.map(|mpixels| {
        let a = bench_agreement(mpixels);
        if !args.json {
            println!(
                "agreement analyses, {} raters, {} classes, {:.0} Mpixel per rater, {threads} thread(s):",
                a.raters, a.classes, a.mpixels
            );
            println!(
                "  pairwise agreement + Cohen's kappa (2 raters): {:>8.3} s  {:>8.1} Mpixel/s  kappa {:.4}",
                a.pair_agreement_kappa_s, a.pair_agreement_kappa_mpixel_per_s, a.cohen_kappa
            );
            println!(
                "  all pairs + Fleiss' kappa + vote entropy:      {:>8.3} s  {:>8.1} Mpixel/s  Fleiss {:.4}",
                a.all_raters_s, a.all_raters_mpixel_per_s, a.fleiss_kappa
            );
            println!(
                "  STAPLE ({} iterations):                        {:>8.3} s  {:>8.1} Mpixel/s",
                a.staple_iterations, a.staple_s, a.staple_mpixel_per_s
            );
            for c in &a.surface {
                println!(
                    "  surface metrics, {side} × {side} px, rater with 10 % flipped: {:>8.3} s  HD95 {:.2} px  ASSD {:.2} px",
                    c.seconds,
                    c.hd95,
                    c.assd,
                    side = c.side
                );
            }
        }
        a
    });
    // `--agree` alone measures only the agreement analyses.
    let architectures = match (args.architectures.is_empty(), agreement.is_some()) {
        (true, true) => Vec::new(),
        (true, false) => Architecture::ALL.to_vec(),
        (false, _) => args.architectures.clone(),
    };
    // The CPU kernels' products only run on flex; the GPU's rate is not theirs.
    let gemm = (!architectures.is_empty() && args.device == DeviceChoice::Flex).then(|| gemm_gflops(1024, 2.0));
    if !args.json && !architectures.is_empty() {
        if let Some(g) = gemm {
            println!("matrix product, one 1024³ per thread at once (best of five windows): {g:.1} GFLOP/s on {threads} thread(s)");
        }
        println!(
            "{:<8} {:>6} {:>9} {:>12} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>18} {:>18}",
            "arch",
            "width",
            "params",
            "train img/s",
            "infer img/s",
            "fused img/s",
            "fwd ms",
            "bwd ms",
            "adam ms",
            "peak MiB",
            "train GFLOP/s",
            "fused GFLOP/s"
        );
    }
    let share = |rate: Option<f64>| match (rate, gemm) {
        (Some(r), Some(g)) => format!("{r:.1} ({:.0} %)", 100.0 * r / g),
        (Some(r), None) => format!("{r:.1}"),
        _ => "n/a".into(),
    };
    // Each case trains on a pool's worker, as a study's run does (`plan.rs`, the study's
    // schedule): called from outside a pool, every parallel operation would wake a worker and put
    // the caller to sleep, which at one thread made the default study's shapes measure 35–45 %
    // slower than the study runs them.
    let workers = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("cannot start worker threads")?;
    for architecture in architectures {
        // Widths scale from the reference unet's, so `--width` resizes every architecture alike.
        let (default_width, depth) = architecture.default_shape();
        let width = (args.width * default_width / 16).max(1);
        let depth = if architecture == Architecture::Unet { reference.network.depth } else { depth };
        let case = BenchCase {
            network: NetworkSpec { architecture, width, depth, ..reference.network },
            size: args.size,
            batch: args.batch,
            steps: args.steps,
        };
        let result = workers.install(|| bench(&case, &device)).with_context(|| format!("benchmark of {architecture} failed"))?;
        if !args.json {
            println!(
                "{:<8} {:>6} {:>9} {:>12.1} {:>12.1} {:>12.1} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>18} {:>18}",
                architecture.name(),
                width,
                result.parameters,
                result.train_images_per_second,
                result.infer_images_per_second,
                result.infer_fused_images_per_second,
                result.forward_ms,
                result.backward_ms,
                result.optimiser_ms,
                result.peak_rss_mib.map_or("n/a".into(), |m| format!("{m:.0}")),
                share(result.train_gflops),
                share(result.infer_fused_gflops),
            );
        }
        results.push(result);
    }
    let report = BenchReport {
        echoseg_version: env!("CARGO_PKG_VERSION"),
        burn_version: BURN_VERSION,
        git_revision: git_revision(),
        finished_unix: now_unix(),
        device: args.device.name(),
        threads,
        cpu: cpu_model(),
        gemm_gflops: gemm,
        results,
        agreement,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if args.json {
        println!("{json}");
    }
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_atomic(out, json.as_bytes())?;
        if !args.json {
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split(':').nth(1)?.trim().to_string())
}
