//! Tiny versions of the known-answer studies of experiments/validation/: each trains in seconds
//! and asserts the answer known by construction, through the same checker `echoseg answers` uses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;

use echoseg_nets::DeviceChoice;
use echoseg_study::take_home::answers::{KnownAnswer, check_answer};
use echoseg_study::{Reuse, Silent, StudyDir, plan::manifest, run_study};
use echoseg_tests::Scratch;

/// A 32 px world of blobs and thin lines, one small fcn, 160 steps, two seeds, generation 0
/// only; `sources` and `extra` complete it.
fn tiny(name: &str, sources: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\nseed = 2\n[world]\nsize = 32\nclasses = [\"blob\", \"thin\"]\nmin_objects = 2\nmax_objects = 4\n\
         {sources}\n{extra}\n[split]\nvalidation = 0.2\ntest = 12\npool = 8\n[nets]\narchitectures = [\"fcn\"]\n\
         fcn = {{ width = 8, depth = 4 }}\n[train]\nsteps = 160\nbatch_size = 8\n[study]\ngenerations = 0\nstrategies = [\"self\"]\nrepeats = 2\n"
    )
}

/// Runs the study `text` in `scratch` and checks it against `answer` (TOML); returns the failures.
fn wrong_checks(scratch: &Scratch, text: &str, answer: &str) -> Vec<String> {
    let m = manifest::parse(Path::new("known.toml"), text).unwrap();
    let dir = StudyDir::new(scratch.path(), &m.name);
    run_study(&m, &dir, &DeviceChoice::Flex.open().unwrap(), Reuse::Nothing, &mut Silent).unwrap();
    let answer: KnownAnswer = toml::from_str(answer).unwrap();
    let outcomes = check_answer(&answer, &dir).unwrap();
    assert!(!outcomes.is_empty());
    outcomes.into_iter().filter(|o| !o.right).map(|o| format!("{}: {} — {}", o.subject, o.what, o.detail)).collect()
}

#[test]
fn a_dilation_every_label_shares_is_learned_and_absent_from_the_ceiling() {
    let scratch = Scratch::new("answer-dilation");
    let text = tiny("dilation", "[[sources]]\nkind = \"manual\"\nimages = 48\ndilate = 2\n", "");
    let answer = "answer = \"learned\"\n\
                  [[check]]\nwhat = \"generation 0 learns the dilation\"\nmetric = \"boundary_offset\"\nmin = 1.0\n\
                  [[check]]\nwhat = \"exact labels have none\"\nmetric = \"boundary_offset\"\nstrategy = \"ceiling\"\nmin = -0.5\nmax = 0.5\n";
    let wrong = wrong_checks(&scratch, &text, answer);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn students_of_dilated_pseudo_labels_grow_outwards_and_their_teachers_do_not() {
    let scratch = Scratch::new("answer-dilated-pseudo-labels");
    // Exact labels, so generation 0 has no offset; its pseudo-labels grown by 2 px before the
    // `self` students learn them: the students' boundaries move outwards, by about the 2 px.
    let text = tiny("pseudo", "[[sources]]\nkind = \"exact\"\nimages = 48\n", "")
        .replace("generations = 0\n", "generations = 1\nceiling = false\ndilate_pseudo_labels = { blob = 2, thin = 2 }\n");
    let answer = "answer = \"grows\"\n\
                  [[check]]\nwhat = \"teachers on exact labels\"\nmetric = \"boundary_offset\"\ngeneration = 0\nmin = -0.5\nmax = 0.5\n\
                  [[check]]\nwhat = \"students of dilated pseudo-labels\"\nmetric = \"boundary_offset\"\ngeneration = 1\nstrategy = \"self\"\nmin = 1.0\n";
    let wrong = wrong_checks(&scratch, &text, answer);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn networks_trained_on_random_label_errors_beat_their_labels() {
    let scratch = Scratch::new("answer-random");
    // As experiments/validation/random-errors.toml with one architecture and fewer test images:
    // at 32 px a 1.5 px wobble erases the smallest blobs, and smaller networks than its fcn
    // (measured: width 8) do not average the errors out within the budget.
    let text = tiny("random", "[[sources]]\nkind = \"manual\"\nimages = 48\njitter = 1.5\nclass_slip = 0.1\n", "")
        .replace("repeats = 2\n", "repeats = 2\nceiling = false\n")
        .replace("size = 32", "size = 48")
        .replace("min_objects = 2\nmax_objects = 4\n", "")
        .replace("width = 8, depth = 4", "width = 12, depth = 4")
        .replace("steps = 160", "steps = 300");
    let answer = "answer = \"denoised\"\n[[check]]\nwhat = \"beats its labels\"\nmetric = \"miou\"\nabove_labels = 0.0\n";
    let wrong = wrong_checks(&scratch, &text, answer);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_tint_that_marks_a_class_in_training_is_relied_on_and_its_interval_excludes_zero() {
    let scratch = Scratch::new("answer-cue");
    let text = tiny("cue", "[[sources]]\nkind = \"exact\"\nimages = 48\n", "[cue]\nclass = \"blob\"\nstrength = 1.0\n");
    let answer = "answer = \"relied on\"\n[[check]]\nwhat = \"reliance above zero\"\nmetric = \"cue_reliance\"\nlow_above = 0.0\n";
    let wrong = wrong_checks(&scratch, &text, answer);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_check_that_matches_nothing_is_wrong_not_silently_right() {
    let scratch = Scratch::new("answer-nothing");
    let text = tiny("nothing", "[[sources]]\nkind = \"exact\"\nimages = 16\n", "").replace("steps = 160", "steps = 4");
    let answer = "answer = \"x\"\n[[check]]\nwhat = \"a generation the study lacks\"\nmetric = \"miou\"\ngeneration = 3\nmin = 0.0\n";
    let wrong = wrong_checks(&scratch, &text, answer);
    assert_eq!(wrong.len(), 1, "{wrong:#?}");
    assert!(wrong[0].contains("no row"), "{wrong:#?}");
}

#[test]
fn a_dilation_repeated_every_generation_drifts_when_replaced_and_less_when_accumulated() {
    use echoseg_agree::{Bias, Trend};
    use echoseg_study::read::{PseudoLabels, read_trends};

    let scratch = Scratch::new("answer-generations");
    // Exact labels, so generation 0 has no offset; every generation's pseudo-labels grown by 1 px.
    // Replacing, each student grows its teacher's boundaries by about 1 px more: a drift of about
    // 1 px per generation. Accumulating, it also learns the earlier, thinner generations'
    // pseudo-labels, generation 0's among them, which hold its boundaries back.
    let text = tiny("generations", "[[sources]]\nkind = \"exact\"\nimages = 48\n", "").replace(
        "generations = 0\n",
        "generations = 3\nceiling = false\ndilate_pseudo_labels = { blob = 1, thin = 1 }\npseudo_labels = [\"replace\", \"accumulate\"]\n",
    );
    let m = manifest::parse(Path::new("generations.toml"), &text).unwrap();
    let dir = StudyDir::new(scratch.path(), &m.name);
    let summary = run_study(&m, &dir, &DeviceChoice::Flex.open().unwrap(), Reuse::Nothing, &mut Silent).unwrap();

    // Generation 1 is shared; an accumulating student of generation 3 learns the pool three times.
    let runs = summary.plan.runs.iter().zip(&summary.outcomes);
    let accumulating =
        |g: u32| runs.clone().filter(move |(r, _)| r.generation == g && r.treatment().pseudo_labels() == PseudoLabels::Accumulate);
    assert_eq!(accumulating(1).count(), 0);
    assert_eq!(accumulating(3).count(), 2, "one per seed");
    for (run, outcome) in accumulating(3) {
        assert_eq!(outcome.selection.as_ref().unwrap().training_images, 3 * 8, "{}", run.id);
    }

    let trends = read_trends(&dir.trends_parquet()).unwrap();
    let offset =
        |mode: PseudoLabels| trends.iter().find(|t| t.bias == Bias::BoundaryOffset && t.treatment.pseudo_labels() == mode).unwrap();
    let (replace, accumulate) = (offset(PseudoLabels::Replace), offset(PseudoLabels::Accumulate));
    assert!(replace.slope[0] >= 0.4, "replace drifts outwards generation after generation (measured 0.60 px): {replace:?}");
    assert_eq!(replace.trend, Trend::Drifts, "{replace:?}");
    // How far back it holds is not a finding at this size (two seeds of a 160-step model): the
    // gap was 0.63 px with the matrix-product kernels and 0.20 px with the direct convolution,
    // which only rounds differently (one accumulating seed drifted as far as replacing). Only
    // the direction is asserted; a larger study has to size it.
    assert!(accumulate.last[0] < replace.last[0], "accumulate holds the boundary back: {accumulate:?} against {replace:?}");
}
