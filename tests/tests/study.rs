//! The whole pipeline, from manifest to report, on a study that runs in seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;

use echoseg_study::{Reuse, Silent, StudyDir, plan::manifest, run_study};
use echoseg_tests::{Scratch, TINY_MANIFEST, run_quietly};

fn run_tiny(reports: &Path, manifest_text: &str) -> std::path::PathBuf {
    let dir = reports.parent().unwrap();
    let path = dir.join("tiny.toml");
    std::fs::write(&path, manifest_text).unwrap();
    run_quietly(&path, reports).unwrap()
}

#[test]
fn same_manifest_and_seed_give_identical_results() {
    let scratch = Scratch::new("determinism");
    let a = scratch.path().join("a");
    let b = scratch.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    run_tiny(&a.join("reports"), TINY_MANIFEST);
    run_tiny(&b.join("reports"), TINY_MANIFEST);
    let csv_a = std::fs::read_to_string(a.join("reports/tiny/results.csv")).unwrap();
    let csv_b = std::fs::read_to_string(b.join("reports/tiny/results.csv")).unwrap();
    assert_eq!(csv_a, csv_b);
    // 2 sources and 6 runs scored, 3 pairs compared: far more than a header.
    assert!(csv_a.lines().count() > 40, "{csv_a}");
    let history_a = std::fs::read_to_string(a.join("reports/tiny/history.csv")).unwrap();
    assert_eq!(history_a, std::fs::read_to_string(b.join("reports/tiny/history.csv")).unwrap());

    // A different seed changes the numbers.
    let c = scratch.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    run_tiny(&c.join("reports"), &TINY_MANIFEST.replace("seed = 7", "seed = 8"));
    assert_ne!(csv_a, std::fs::read_to_string(c.join("reports/tiny/results.csv")).unwrap());
}

#[test]
fn report_has_its_figures_tables_and_manifest_copy() {
    let scratch = Scratch::new("report");
    let reports = scratch.path().join("reports");
    let page = run_tiny(&reports, TINY_MANIFEST);
    let html = std::fs::read_to_string(&page).unwrap();
    for section in [
        "id=\"verdict\"",
        "id=\"fingerprints\"",
        "id=\"agreement\"",
        "id=\"without-truth\"",
        "id=\"samples\"",
        "id=\"calibration\"",
        "id=\"training\"",
        "id=\"sources\"",
        "id=\"setup\"",
    ] {
        assert!(html.contains(section), "missing {section}");
    }
    let figures: Vec<&str> =
        html.match_indices("src=\"figures/").map(|(i, _)| &html[i + 5..i + 5 + html[i + 5..].find('"').unwrap()]).collect();
    // samples, fingerprint, subgroups, transfer, kappa, error correlation, without truth, calibration, loss
    assert_eq!(figures.len(), 9, "{figures:?}");
    for f in &figures {
        let bytes = std::fs::read(reports.join("tiny").join(f)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f} is not a PNG");
        assert!(bytes.len() > 5_000, "{f} is suspiciously small: {} bytes", bytes.len());
        // Line art and heatmaps come as SVG too; the pixel panels of sample images only as PNG.
        let svg = std::fs::read_to_string(reports.join("tiny").join(f.replace(".png", ".svg")));
        match svg {
            Ok(svg) => assert!(svg.starts_with("<svg") && svg.len() > 5_000, "{f}: the SVG is not a drawing"),
            Err(_) => assert!(f.starts_with("figures/samples-"), "{f} has no SVG"),
        }
    }
    let copy = std::fs::read_to_string(reports.join("tiny/manifest.toml")).unwrap();
    assert_eq!(copy, TINY_MANIFEST);
    let csv = std::fs::read_to_string(reports.join("tiny/results.csv")).unwrap();
    assert!(csv.starts_with("subject,generation,strategy,selection,model,teacher,peer,repeat,metric,value,run_id,chain"), "{csv}");
    for needle in [
        "model,0,labels,all,unet",
        "model,1,self,all,fcn",
        "model,1,cross,all,unet,fcn",
        "pair,0,labels,all,unet,\"\",fcn,0,kappa",
        "source,0,labels,all,manual",
    ] {
        assert!(csv.contains(needle), "results.csv lacks {needle}");
    }
}

#[test]
fn a_failed_study_leaves_the_previous_report_intact() {
    let scratch = Scratch::new("atomic");
    let reports = scratch.path().join("reports");
    let page = run_tiny(&reports, TINY_MANIFEST);
    let before = std::fs::read(&page).unwrap();
    let figures_before: Vec<_> = std::fs::read_dir(reports.join("tiny/figures")).unwrap().map(|e| e.unwrap().file_name()).collect();

    // An absurd learning rate makes the first run diverge midway through the study.
    let path = scratch.path().join("tiny.toml");
    std::fs::write(&path, TINY_MANIFEST.replace("batch_size = 8", "batch_size = 8\nlearning_rate = 1e12")).unwrap();
    let err = run_quietly(&path, &reports).unwrap_err();
    let text = echoseg::describe_error(&err);
    assert!(text.contains("diverged"), "{text}");
    assert!(text.contains("--resume"), "{text}");

    assert_eq!(std::fs::read(&page).unwrap(), before, "index.html changed");
    let figures_after: Vec<_> = std::fs::read_dir(reports.join("tiny/figures")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(figures_before, figures_after);
    // No temporary files are left beside the report.
    let stray: Vec<_> = std::fs::read_dir(reports.join("tiny"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn re_rendering_is_identical_and_removes_stale_figures() {
    let scratch = Scratch::new("rerender");
    let reports = scratch.path().join("reports");
    let page = run_tiny(&reports, TINY_MANIFEST);
    let first = std::fs::read_to_string(&page).unwrap();
    let stale = reports.join("tiny/figures/old-0000.png");
    std::fs::write(&stale, b"stale").unwrap();
    echoseg_report::render(&StudyDir::new(&reports, "tiny")).unwrap();
    assert_eq!(std::fs::read_to_string(&page).unwrap(), first);
    assert!(!stale.exists());
}

#[test]
fn malformed_manifest_gives_the_documented_error() {
    let scratch = Scratch::new("malformed");
    let text = TINY_MANIFEST.replace("epochs = ", "epochz = ");
    let path = scratch.write("bad.toml", &text);
    let line = text.lines().position(|l| l.starts_with("epochz")).unwrap() + 1;
    let err = manifest::load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:{line}:1: key `train.epochz`: unknown field `epochz`, expected one of", path.display())), "{err}");
    let wrong_type = TINY_MANIFEST.replacen("dilate = 1", "dilate = \"one\"", 1);
    let path = scratch.write("type.toml", &wrong_type);
    let err = manifest::load(&path).unwrap_err().to_string();
    let line = wrong_type.lines().position(|l| l.starts_with("dilate")).unwrap() + 1;
    assert!(err.contains(&format!(":{line}:10: key `sources[0].dilate`: invalid type: string \"one\", expected f32")), "{err}");
    let err = manifest::load(&scratch.path().join("missing.toml")).unwrap_err().to_string();
    assert!(err.starts_with("cannot read manifest") && err.contains("missing.toml"), "{err}");

    // Nothing is written for a bad manifest.
    let reports = scratch.path().join("reports");
    assert!(run_quietly(&path, &reports).is_err());
    assert!(!reports.exists());
}

#[test]
fn study_engine_runs_without_the_cli() {
    let scratch = Scratch::new("engine");
    let m = manifest::parse(Path::new("tiny.toml"), TINY_MANIFEST).unwrap();
    let dir = StudyDir::new(scratch.path(), &m.name);
    let device = echoseg_nets::DeviceChoice::Flex.open().unwrap();
    let summary = run_study(&m, &dir, &device, Reuse::Nothing, &mut Silent).unwrap();
    assert_eq!(summary.plan.runs.len(), 8, "2 at generation 0, 2 self, 2 cross, 2 ceilings");
    assert_eq!(summary.trained, 8);
    // Resuming a finished study trains nothing and reproduces the outcomes.
    let again = run_study(&m, &dir, &device, Reuse::Finished, &mut Silent).unwrap();
    assert_eq!(again.trained, 0);
    assert_eq!(again.outcomes, summary.outcomes);
}

#[test]
fn spurious_cue_and_synthetic_source_give_reliance_and_domain_gap() {
    let scratch = Scratch::new("cue");
    let reports = scratch.path().join("reports");
    let text = TINY_MANIFEST.replace("strategies = [\"self\", \"cross\"]", "strategies = [\"self\"]")
        + "\n[[sources]]\nkind = \"synthetic\"\nimages = 16\n\n[cue]\nclass = \"blob\"\nsources = [\"synthetic\"]\n";
    run_tiny(&reports, &text);
    let csv = std::fs::read_to_string(reports.join("tiny/results.csv")).unwrap();
    let splits = std::fs::read_to_string(reports.join("tiny/splits.json")).unwrap();
    assert!(splits.contains("\"synthetic_test\": [\n    \"s"), "a synthetic test set exists by default: {splits}");
    for run in ["model,0,labels,all,unet", "model,1,self,all,fcn"] {
        for metric in ["cue_reliance", "domain_gap", "thin_recall", "low_contrast_recall"] {
            let row = csv.lines().find(|l| l.starts_with(run) && l.contains(&format!(",{metric},")));
            let value: f64 = row.and_then(|l| l.split(',').nth(9)).unwrap_or_else(|| panic!("{run} lacks {metric}")).parse().unwrap();
            assert!(value.is_finite() && value.abs() <= 1.0, "{run} {metric} = {value}");
        }
    }
    // Both come with intervals over test images, and the whole-sample estimate is the run's own
    // value (one seed; every synthetic test image paired with the real one of its index).
    let (header, rows) = csv_rows(&reports.join("tiny/summary.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for metric in ["cue_reliance", "domain_gap"] {
        let row = rows
            .iter()
            .find(|r| {
                r[col("metric")] == metric && r[col("generation")] == "0" && r[col("strategy")] == "labels" && r[col("model")] == "unet"
            })
            .unwrap_or_else(|| panic!("no {metric} in summary.csv"));
        let f = |name: &str| row[col(name)].parse::<f64>().unwrap();
        assert!(f("low") <= f("estimate") && f("estimate") <= f("high"), "{row:?}");
        let own = csv.lines().find(|l| l.starts_with("model,0,labels,all,unet") && l.contains(&format!(",{metric},"))).unwrap();
        let own: f64 = own.split(',').nth(9).unwrap().parse().unwrap();
        assert!((own - f("estimate")).abs() < 1e-9, "{metric}: run {own}, summary {}", f("estimate"));
    }
    let verdicts = std::fs::read_to_string(reports.join("tiny/verdicts.csv")).unwrap();
    for metric in ["cue_reliance", "domain_gap"] {
        assert!(verdicts.lines().any(|l| l.contains(&format!(",{metric},"))), "no verdict on {metric}");
    }
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

#[test]
fn verdicts_and_intervals_are_written_consistently_and_lead_the_report() {
    let scratch = Scratch::new("verdicts");
    let reports = scratch.path().join("reports");
    let page = run_tiny(&reports, TINY_MANIFEST);

    let (header, rows) = csv_rows(&reports.join("tiny/verdicts.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    // 2 architectures × 2 strategies × 1 generation × biases the tiny world can show.
    assert!(rows.len() >= 8, "{rows:?}");
    for row in &rows {
        let f = |name: &str| row[col(name)].parse::<f64>().unwrap();
        for side in ["before", "after", "change"] {
            let (v, lo, hi) = (f(side), f(&format!("{side}_low")), f(&format!("{side}_high")));
            assert!(lo <= v + 1e-9 && v <= hi + 1e-9, "{side}: {v} not in [{lo}, {hi}]: {row:?}");
        }
        // The rules as experiments/README.md states them: most pairs collapsed, else a direction
        // only when the interval excludes zero and the change reaches the practical minimum; the
        // boundary offset, signed, also reverses.
        let (minimum, collapsed, used) = (f("minimum"), f("collapsed"), f("repeats"));
        let total = if collapsed >= used { collapsed } else { used + collapsed };
        let signed = row[col("metric")] == "boundary_offset";
        let side = |v: f64, lo: f64, hi: f64| {
            if lo > 0.0 && v >= minimum {
                1
            } else if hi < 0.0 && -v >= minimum {
                -1
            } else {
                0
            }
        };
        let grew = f("change_low") > 0.0 && f("change") >= minimum;
        let shrank = f("change_high") < 0.0 && -f("change") >= minimum;
        // A lineage through an architecture that does not learn the task has no verdict (see the
        // test below): the student's or its teacher's own `self` verdicts say so too.
        if row[col("verdict")] == "unlearned" {
            let unlearned = |model: &str| {
                rows.iter().filter(|r| r[col("strategy")] == "self" && r[col("model")] == model).all(|r| r[col("verdict")] == "unlearned")
            };
            assert!(unlearned(&row[col("model")]) || unlearned(&row[col("against")]), "{row:?}");
            continue;
        }
        let inside = -minimum < f("change_low") && f("change_high") < minimum;
        let expected = if 2.0 * collapsed > total {
            "collapsed"
        } else if signed && side(f("before"), f("before_low"), f("before_high")) * side(f("after"), f("after_low"), f("after_high")) == -1 {
            "reverses"
        } else {
            match (signed, grew, shrank) {
                (false, true, _) => "amplifies",
                (false, _, true) => "cancels",
                (true, true, _) => "grows",
                (true, _, true) => "shrinks",
                _ if inside => "holds",
                _ => "undecided",
            }
        };
        assert_eq!(row[col("verdict")], expected, "{row:?}");
        // Only an undecided verdict names the seeds that would decide it.
        if expected != "undecided" {
            assert_eq!(row[col("seeds_needed")], "", "{row:?}");
        }
    }

    let (header, rows) = csv_rows(&reports.join("tiny/summary.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mious: Vec<&Vec<String>> = rows.iter().filter(|r| r[col("metric")] == "miou").collect();
    assert_eq!(mious.len(), 8, "one mIoU per configuration, the ceilings included");
    for row in mious {
        let (v, lo, hi): (f64, f64, f64) =
            (row[col("estimate")].parse().unwrap(), row[col("low")].parse().unwrap(), row[col("high")].parse().unwrap());
        assert!(lo <= v && v <= hi && hi - lo < 0.5 && (0.0..=1.0).contains(&v), "{row:?}");
    }

    // Calibration and boundary F1 for every model, in [0, 1].
    let (header, rows) = csv_rows(&reports.join("tiny/results.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for metric in ["ece", "boundary_f1"] {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r[col("subject")] == "model" && r[col("metric")] == metric)
            .map(|r| r[col("value")].parse().unwrap())
            .collect();
        assert_eq!(values.len(), 8, "{metric} for every run");
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{metric}: {values:?}");
    }

    let html = std::fs::read_to_string(&page).unwrap();
    let verdict = html.find("id=\"verdict\"").expect("no verdict section");
    assert!(verdict < html.find("id=\"fingerprints\"").unwrap(), "the verdict must come first");
    assert!(html[verdict..].contains("after 1 generation of pseudo-labels"), "no plain-words verdict");
    // The answer table shows each architecture's ceiling beside generation 0, and the gap recovered follows.
    assert!(html[verdict..].contains("exact labels | generation 0 → 1"), "no ceiling in the answer table");
    let gap = html.find("id=\"gap\"").expect("no gap-recovered section");
    assert!(gap < html.find("id=\"fingerprints\"").unwrap());
    assert!(reports.join("tiny/gap.csv").exists());
}

#[test]
fn networks_that_cannot_learn_the_task_give_no_verdict_and_the_report_says_so_first() {
    // bnonly only re-weights random features: on exact labels it stays far below the labels'
    // mIoU (0.35 against about 0.7 in the default world), so whatever its students do says
    // nothing about labels.
    let scratch = Scratch::new("unlearned");
    let reports = scratch.path().join("reports");
    let text = TINY_MANIFEST
        .replace("architectures = [\"unet\", \"fcn\"]", "architectures = [\"bnonly\"]\nbnonly = { width = 4, depth = 2 }")
        .replace("strategies = [\"self\", \"cross\"]", "strategies = [\"self\"]");
    let page = run_tiny(&reports, &text);
    let (header, rows) = csv_rows(&reports.join("tiny/verdicts.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[col("verdict")] == "unlearned" && r[col("learned")] == "false"), "{rows:?}");
    let (header, rows) = csv_rows(&reports.join("tiny/summary.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let ceiling: f64 =
        rows.iter().find(|r| r[col("strategy")] == "ceiling" && r[col("metric")] == "miou").unwrap()[col("estimate")].parse().unwrap();
    assert!(ceiling < echoseg_study::analysis::intervals::LEARNED_MIOU, "ceiling mIoU {ceiling}");
    let html = std::fs::read_to_string(&page).unwrap();
    let warning = html.find("These networks do not learn this task").expect("no first-line warning");
    assert!(warning < html.find("<table").unwrap(), "the warning must come before any table");
}

#[test]
fn a_study_name_with_markup_is_escaped_in_the_report() {
    let scratch = Scratch::new("escape");
    let reports = scratch.path().join("reports");
    let page = run_tiny(
        &reports,
        &TINY_MANIFEST.replace("name = \"tiny\"", "name = \"<script>alert(1)\"").replace("generations = 1", "generations = 0"),
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // Names may not contain '/', so no closing tag; the opening one alone would swallow the page.
    assert!(!html.contains("<script>"), "unescaped markup in the page");
    assert!(html.contains("&lt;script&gt;alert(1)"), "the name is missing from the page");
}

#[test]
fn surface_metrics_show_a_one_pixel_dilation_as_one_pixel() {
    let scratch = Scratch::new("surfaces");
    let reports = scratch.path().join("reports");
    let page = run_tiny(&reports, TINY_MANIFEST);
    let (header, rows) = csv_rows(&reports.join("tiny/results.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (subject, model, metric, value) = (col("subject"), col("model"), col("metric"), col("value"));
    let of = |who: &str, m: &str| -> Vec<f64> {
        rows.iter().filter(|r| r[subject] == who && r[metric] == m).map(|r| r[value].parse().unwrap()).collect()
    };
    // The manual source draws every object 1 px too large: its borders lie about 1 px from the truth's.
    let manual = |m: &str| -> f64 {
        rows.iter().find(|r| r[subject] == "source" && r[model] == "manual" && r[metric] == m).unwrap()[value].parse().unwrap()
    };
    let assd = manual("assd_blob");
    assert!((0.7..=1.3).contains(&assd), "ASSD of a 1 px dilation: {assd}");
    assert!(manual("hd95_blob") <= 2.0, "HD95 {}", manual("hd95_blob"));
    assert!(manual("surface_dice_blob") > 0.9, "within the 1 px tolerance: {}", manual("surface_dice_blob"));
    // Every scored model has them too, each share within [0, 1].
    let shares = of("model", "surface_dice_thin");
    assert_eq!(shares.len(), 8, "two architectures: ceiling, generation 0, self and cross");
    assert!(shares.iter().chain(&of("model", "cldice_thin")).all(|v| (0.0..=1.0).contains(v)));
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("id=\"surfaces\"") && html.contains("HD95 blob (px)"), "no surface table in the report");
}

#[test]
fn a_study_run_in_shards_and_merged_records_its_provenance_and_setup() {
    let scratch = Scratch::new("merged-provenance");
    let text = TINY_MANIFEST
        .replace("strategies = [\"self\", \"cross\"]", "strategies = [\"self\"]\nrepeats = 2")
        .replace("epochs = 12", "epochs = 2");
    let path = scratch.write("tiny.toml", &text);
    let reports = scratch.path().join("reports");
    let (manifest_arg, reports_arg) = (path.to_string_lossy().into_owned(), reports.to_string_lossy().into_owned());
    for shard in ["1/2", "2/2"] {
        echoseg::run_cli(["echoseg", "run", &manifest_arg, "--reports", &reports_arg, "--quiet", "--shard", shard]).unwrap();
    }
    let name = manifest::load(&path).unwrap().name;
    echoseg::run_cli(["echoseg", "merge", &name, "--reports", &reports_arg]).unwrap();

    let dir = StudyDir::new(&reports, &name);
    let provenance: echoseg_study::Provenance = echoseg_study::store::read_json(&dir.provenance()).unwrap();
    assert_eq!((provenance.runs_trained, provenance.runs_reused), (0, 12), "the merge trains nothing and gathers all 12 runs");
    assert!(provenance.command.contains("merge"), "{}", provenance.command);
    assert_eq!(std::fs::read_to_string(dir.manifest_copy()).unwrap(), text);
    let page = std::fs::read_to_string(dir.root().join("index.html")).unwrap();
    assert!(page.contains("runs trained / reused"), "the report's setup table is there");

    // `--jobs` is checked as the manifest's `jobs` is.
    let err = echoseg::run_cli(["echoseg", "run", &manifest_arg, "--reports", &reports_arg, "--jobs", "5000"]).unwrap_err();
    assert!(format!("{err:#}").contains("--jobs 5000: must be between 0 (one per worker thread) and 1024, got 5000"), "{err:#}");
}
