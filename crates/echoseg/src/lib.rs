//! The `echoseg` command line: parses arguments, then calls the study and report crates.
//! Thin on purpose; everything it does is reachable as a library call.

mod agree;
mod bench;
mod export;
mod plan;
mod predict;
mod progress;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use echoseg_nets::DeviceChoice;
use echoseg_scene::read_folder;
use echoseg_study::plan::data::{MaskCoverage, StudyData};
// `run` takes it, so callers of the library find it here too.
use echoseg_study::plan::manifest::DataSpec;
use echoseg_study::plan::overview::MaskSetOverview;
pub use echoseg_study::run::finish::Invocation;
use echoseg_study::run::finish::{Process, finish};
use echoseg_study::{Manifest, Reuse, Shard, StudyDir, StudyError, merge_study, plan::manifest, run_study_shard};

/// Train segmenters on mixed-source labels and measure whether their biases amplify or cancel.
#[derive(Debug, Parser)]
#[command(name = "echoseg", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the study a manifest describes and write its report to REPORTS/NAME/index.html.
    Run {
        /// The manifest (for example experiments/default.toml).
        manifest: PathBuf,
        /// Directory that holds the reports.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Compute device, overriding the manifest's `device`: flex (CPU) or wgpu (GPU).
        #[arg(long, value_parser = parse_device)]
        device: Option<DeviceChoice>,
        /// Worker threads, overriding the manifest's `threads` (0 = one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Runs trained at once, sharing the worker threads, overriding the manifest's `jobs`
        /// (0 = one per thread); results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Keep finished runs from an earlier, interrupted or changed study and do only the rest.
        #[arg(long)]
        resume: bool,
        /// Print nothing but errors (for scripts).
        #[arg(long, short)]
        quiet: bool,
        /// Override a manifest key, e.g. `--set train.epochs=4` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run only the I-th of N disjoint slices of the plan into the shared run store; after
        /// every slice has finished, `echoseg merge NAME` writes the tables and the report.
        #[arg(long, value_parser = parse_shard, value_name = "I/N")]
        shard: Option<Shard>,
    },
    /// Print the runs a manifest expands to, with a time estimate from a short timing.
    Plan {
        /// The manifest.
        manifest: PathBuf,
        /// Override a manifest key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Skip the timing; print the runs only.
        #[arg(long)]
        no_timing: bool,
        /// A finished study (a pilot) whose verdicts' changes and spreads project how many
        /// verdicts this plan's seeds would decide.
        #[arg(long, value_name = "NAME")]
        from: Option<String>,
        /// Directory that holds the reports.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Gather the runs of every shard of a study and write its tables and report.
    Merge {
        /// The study name (its directory under REPORTS).
        name: String,
        /// Directory that holds the reports.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Re-render the report of a finished study from its results tables.
    Report {
        /// The study name (its directory under REPORTS).
        name: String,
        /// Directory that holds the reports.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Check a manifest and its data (every image and mask of a folder dataset) without training.
    Validate {
        /// The manifest.
        manifest: PathBuf,
        /// Override a manifest key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Write the study's images and every source's masks as PNG in the folder layout
    /// (images/NAME.png, masks/SOURCE/NAME.png, masks/truth/NAME.png).
    Generate {
        /// The manifest.
        manifest: PathBuf,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Every simulated source labels every image (the multi-rater layout, as masks from several
        /// algorithms run on a whole dataset); without it each source masks only its own images.
        #[arg(long)]
        every_image: bool,
    },
    /// Run studies whose answer is known by construction (each manifest with NAME.answer.toml
    /// beside it) and say, check by check, whether their verdicts come out right.
    Answers {
        /// The manifests (for example experiments/validation/*.toml).
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        /// Directory that holds the reports.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Keep finished runs of earlier runs of these studies.
        #[arg(long)]
        resume: bool,
        /// Check the studies already in REPORTS without running them.
        #[arg(long)]
        no_run: bool,
    },
    /// Measure training and inference images/s and peak memory of each architecture.
    Bench(bench::BenchArgs),
    /// Agreement, kappa and STAPLE of segmentations made anywhere (grey PNG masks of class
    /// indices), with truth scores when --truth is given.
    Agree(agree::AgreeArgs),
    /// Segment new images with a finished run's network (reports/NAME/runs/RUN), with the
    /// study's inference batch and tiling: grey PNG masks of class indices and confidence maps.
    Predict(predict::PredictArgs),
    /// Write the committee mask of one configuration of a finished study for every image of the
    /// study, with its confidence, in the folder layout (masks better than each source?).
    Export(export::ExportArgs),
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text).ok_or_else(|| format!("`{text}` is not a shard; write I/N with 1 ≤ I ≤ N, e.g. 2/4"))
}

fn parse_device(name: &str) -> Result<DeviceChoice, String> {
    DeviceChoice::parse(name).ok_or_else(|| format!("unknown device `{name}`; use `flex` (CPU) or `wgpu` (GPU)"))
}

/// Runs the command line `args` (the first item is the program name).
pub fn run_cli<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            print!("{e}");
            return Ok(());
        }
        Err(e) => bail!("{}", e.render().to_string().trim_end()),
    };
    init_logging();
    // The command line as provenance records it.
    let command = args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
    match cli.command {
        Command::Run { manifest, reports, device, threads, jobs, resume, quiet, overrides, shard } => {
            let invocation = Invocation { manifest, overrides };
            let options = RunOptions { device, threads, jobs, resume, quiet, shard };
            run(&invocation, &reports, &options, &command).map(|_| ())
        }
        Command::Plan { manifest, overrides, no_timing, from, reports } => {
            plan::print(&manifest, &overrides, !no_timing)?;
            match from {
                Some(name) => plan::print_resolution(&manifest, &overrides, &StudyDir::new(&reports, &name)),
                None => Ok(()),
            }
        }
        Command::Merge { name, reports } => {
            let dir = StudyDir::new(&reports, &name);
            let invocation = Invocation::of_study(&dir).with_context(|| {
                format!("{} was not written by `echoseg run --shard`, so there is nothing to merge", dir.root().display())
            })?;
            let manifest = invocation.load()?;
            let summary = merge_study(&manifest, &dir)?;
            let process = Process { command: &command, device: manifest.device.name(), threads: rayon::current_num_threads() };
            finish(&manifest, &dir, &invocation, &summary, &process)?;
            let page = echoseg_report::render(&dir)?;
            println!("merged {} run(s) of study `{}`\nreport: {}", summary.outcomes.len(), manifest.name, page.display());
            Ok(())
        }
        Command::Report { name, reports } => {
            let page = echoseg_report::render(&StudyDir::new(&reports, &name))?;
            println!("report: {}", page.display());
            Ok(())
        }
        Command::Validate { manifest, overrides } => {
            let m = manifest::load_with(&manifest, &overrides)?;
            let misfit = || format!("{}: the data does not fit the manifest", manifest.display());
            let data = match &m.data {
                DataSpec::Folder(spec) => {
                    let folder = read_folder(spec).map_err(StudyError::Data).with_context(misfit)?;
                    for line in MaskSetOverview::of(&folder, &m.classes).lines(&m.classes) {
                        println!("{line}");
                    }
                    StudyData::from_folder(&m, folder).with_context(misfit)?
                }
                DataSpec::World(_) => StudyData::load(&m).with_context(misfit)?,
            };
            println!("{}", data.layout(&m));
            println!(
                "{}: valid — study `{}`: {} source(s), images of {}, {} model(s), {} run(s)",
                manifest.display(),
                m.name,
                m.sources.len(),
                data.sizes_in_words(),
                m.networks.len(),
                echoseg_study::plan(&m, &data).runs.len()
            );
            Ok(())
        }
        Command::Generate { manifest, out, every_image } => {
            let m = manifest::load(&manifest)?;
            let data = StudyData::load(&m)?;
            let coverage = if every_image { MaskCoverage::EveryImage } else { MaskCoverage::OwnImages };
            data.export(&m, &out, coverage)?;
            let which = if every_image { "every source on every image" } else { "each source on its own images" };
            println!("wrote the data of study `{}` to {} (images/, masks/truth/, masks/SOURCE/: {which})", m.name, out.display());
            Ok(())
        }
        Command::Answers { manifests, reports, resume, no_run } => answers(&manifests, &reports, resume, no_run, &command),
        Command::Bench(args) => bench::run(args),
        Command::Agree(args) => agree::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Export(args) => export::run(args),
    }
}

/// `echoseg answers`: runs each known-answer study (unless `no_run`), checks it against its
/// answer file and prints one line per check; fails when any check is wrong.
fn answers(manifests: &[PathBuf], reports: &Path, resume: bool, no_run: bool, command: &str) -> Result<()> {
    use echoseg_study::take_home::answers::{answer_path, check_answer, read_answer};
    let (mut right, mut wrong) = (0usize, 0usize);
    // A shell glob of the folder also lists the answer files; they are read beside their manifests.
    for path in manifests.iter().filter(|p| !p.to_string_lossy().ends_with(".answer.toml")) {
        let answer_file = answer_path(path);
        let answer = read_answer(&answer_file).with_context(|| format!("{} has no readable answer beside it", path.display()))?;
        let m = manifest::load(path)?;
        if !no_run {
            eprintln!("running {} …", path.display());
            let options = RunOptions { resume, quiet: true, ..RunOptions::default() };
            run(&Invocation { manifest: path.clone(), overrides: Vec::new() }, reports, &options, command)?;
        }
        let outcomes = check_answer(&answer, &StudyDir::new(reports, &m.name))?;
        println!("{} — {}", m.name, answer.answer);
        for o in &outcomes {
            println!("  {}  {}: {} — {}", if o.right { "right" } else { "WRONG" }, o.subject, o.what, o.detail);
        }
        right += outcomes.iter().filter(|o| o.right).count();
        wrong += outcomes.iter().filter(|o| !o.right).count();
    }
    println!("{right} right, {wrong} wrong");
    if wrong > 0 {
        bail!("{wrong} check(s) came out wrong");
    }
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ECHOSEG_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // A second initialisation (tests calling run_cli twice) is harmless.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// How `echoseg run` runs a study.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Device, overriding the manifest's.
    pub device: Option<DeviceChoice>,
    /// Worker threads, overriding the manifest's.
    pub threads: Option<usize>,
    /// Runs trained at once, overriding the manifest's.
    pub jobs: Option<usize>,
    /// Keep finished runs.
    pub resume: bool,
    /// Print only errors.
    pub quiet: bool,
    /// Run only one slice of the plan.
    pub shard: Option<Shard>,
}

/// Runs a study end to end and renders its report; returns the page path (for a shard, the
/// run store, since the report waits for `merge`).
pub fn run(invocation: &Invocation, reports: &Path, options: &RunOptions, command: &str) -> Result<PathBuf> {
    let manifest_path = &invocation.manifest;
    let mut manifest: Manifest = manifest::load_with(manifest_path, &invocation.overrides)?;
    if let Some(jobs) = options.jobs {
        manifest = manifest.with_jobs(jobs)?;
    }
    let choice = options.device.unwrap_or(manifest.device);
    let compute = choice.open()?;
    let threads = configure_threads(options.threads.unwrap_or(manifest.threads));
    let dir = StudyDir::new(reports, &manifest.name);
    let quiet = options.quiet;

    let mut observer = progress::Terminal::new(quiet);
    let reuse = if options.resume { Reuse::Finished } else { Reuse::Nothing };
    // `echoseg merge` and `echoseg export` load the manifest as it ran: shards record it before
    // they start (merge needs it whichever finishes last), a whole study once it has finished.
    if options.shard.is_some() {
        invocation.record(&dir)?;
    }
    let summary = run_study_shard(&manifest, &dir, &compute, reuse, options.shard, &mut observer).with_context(|| {
        format!(
            "study `{}` stopped; finished runs are kept in {}, and `echoseg run {} --resume` continues from them",
            manifest.name,
            dir.runs().display(),
            manifest_path.display()
        )
    })?;
    observer.finish();
    if let Some(shard) = options.shard {
        if !quiet {
            println!(
                "shard {}/{} of study `{}`: {} run(s) ({} trained) in {:.1} s; when every shard is done, `echoseg merge {}` writes the report",
                shard.index,
                shard.count,
                manifest.name,
                summary.outcomes.len(),
                summary.trained,
                summary.seconds,
                manifest.name
            );
        }
        return Ok(dir.runs());
    }

    finish(&manifest, &dir, invocation, &summary, &Process { command, device: choice.name(), threads })?;
    let page = echoseg_report::render(&dir)?;
    if !quiet {
        println!(
            "study `{}`: {} run(s) ({} trained, {} reused) in {:.1} s\nreport: {}",
            manifest.name,
            summary.plan.runs.len(),
            summary.trained,
            summary.plan.runs.len() - summary.trained,
            summary.seconds,
            page.display()
        );
    }
    Ok(page)
}

/// Sizes the global worker pool (shared by the CPU backend and the metrics); returns the count in use.
fn configure_threads(requested: usize) -> usize {
    if requested > 0 {
        // Fails only when the pool already exists (a second study in one process); it keeps its size.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(requested).build_global();
    }
    rayon::current_num_threads()
}

/// The error and its causes, one per line, as the binary prints them.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = format!("error: {error}");
    for cause in error.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    text
}
