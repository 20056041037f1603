//! The manifest's validation, message by message, and `--set` editing.

use super::*;

const GOOD: &str = r#"
name = "t"
[[sources]]
kind = "manual"
images = 10
dilate = 1

[[sources]]
kind = "heuristic"
images = 10
"#;

#[test]
fn verdict_minimums_and_training_budgets_are_checked_with_their_line() {
    let text = format!("{GOOD}[train]\nsteps = 100\nepochs = 4\n[verdict]\nthin_recall = -0.1\nboundary_offset = 0.5\n");
    let err = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
    assert!(err.contains("t.toml:12: `train.steps` and `epochs` are two budgets"), "{err}");
    assert!(err.contains("t.toml:15: `verdict.thin_recall` must be a number ≥ 0"), "{err}");
    let ok = parse(Path::new("t.toml"), &format!("{GOOD}[verdict]\nboundary_offset = 0.5\n")).unwrap();
    assert_eq!((ok.verdict.minimum(Bias::BoundaryOffset), ok.verdict.minimum(Bias::ThinRecall)), (0.5, 0.05));
    let typo = parse(Path::new("t.toml"), &format!("{GOOD}[verdict]\nboundary = 0.5\n")).unwrap_err().to_string();
    assert!(typo.contains("boundary"), "{typo}");
}

#[test]
fn label_issue_settings_default_to_cleanlabs_and_bad_values_name_their_line() {
    assert_eq!(parse(Path::new("t.toml"), GOOD).unwrap().label_issues, None, "absent: not searched");
    let on = parse(Path::new("t.toml"), &format!("{GOOD}[label_issues]\n")).unwrap().label_issues.unwrap();
    assert_eq!((on.folds, on.temperature, on.worst, on.export_probabilities, on.leave_source_out), (2, 0.1, 4, false, false));
    let alone = "[[sources]]\nkind = \"manual\"\nimages = 4\n[label_issues]\nleave_source_out = true\n";
    let err = parse(Path::new("t.toml"), alone).unwrap_err().to_string();
    assert!(err.contains("t.toml:5: `label_issues.leave_source_out` needs at least two label sources"), "{err}");
    let text = format!("{GOOD}[label_issues]\nfolds = 1\ntemperature = 0\n");
    let err = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
    let lines = GOOD.lines().count();
    assert!(err.contains(&format!("t.toml:{}: `label_issues.folds` must be between 2 and 10", lines + 2)), "{err}");
    assert!(err.contains(&format!("t.toml:{}: `label_issues.temperature` must be a number > 0", lines + 3)), "{err}");
    let typo = parse(Path::new("t.toml"), &format!("{GOOD}[label_issues]\nfold = 3\n")).unwrap_err().to_string();
    assert!(typo.contains("fold"), "{typo}");
}

#[test]
fn kind_names_are_the_manifest_names() {
    for kind in SourceKind::ALL {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
    }
    for kind in SelectionKind::ALL {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
    }
}

#[test]
fn missing_kinds_and_empty_lists_say_what_is_allowed() {
    let err = parse(Path::new("t.toml"), "[nets]\narchitectures = []\n[study]\nstrategies = []\n").unwrap_err().to_string();
    for needle in [
        "`sources` needs at least one [[sources]] table (kind = \"exact\", \"manual\", \"heuristic\", \"synthetic\" or \"folder\")",
        "`nets.architectures` needs at least one of \"unet\", \"fcn\", \"dilated\", \"bnonly\", \"pixel\"",
        "`study.strategies` needs at least one of \"self\", \"cross\", \"ensemble\", \"consensus\", \"ema\" when study.generations > 0",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
    let err = parse(Path::new("t.toml"), "[[sources]]\nimages = 4\n").unwrap_err().to_string();
    let needle = "`sources[0].kind` is missing; allowed: \"exact\", \"manual\", \"heuristic\", \"synthetic\", \"folder\"";
    assert!(err.contains(needle), "missing {needle} in {err}");
}

#[test]
fn a_good_manifest_validates_with_defaults() {
    let m = parse(Path::new("t.toml"), GOOD).unwrap();
    assert_eq!(m.sources.len(), 2);
    assert_eq!(m.sources[0].name, "manual");
    assert_eq!(m.networks.len(), 2);
    assert_eq!(*m.train, TrainConfig::default());
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = format!("{GOOD}\n[train]\nepochz = 3\n");
    let err = parse(Path::new("x/t.toml"), &text).unwrap_err();
    let msg = err.to_string();
    let line = text.lines().position(|l| l.starts_with("epochz")).unwrap() + 1;
    assert!(msg.starts_with(&format!("x/t.toml:{line}:1: key `train.epochz`: unknown field `epochz`")), "{msg}");
}

#[test]
fn wrong_type_names_the_key() {
    let text = GOOD.replace("dilate = 1", "dilate = \"one\"");
    let msg = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
    assert!(msg.contains("t.toml:6:") && msg.contains("key `sources[0].dilate`") && msg.contains("invalid type"), "{msg}");
}

#[test]
fn all_semantic_problems_are_reported_at_once() {
    let text = GOOD.replace("images = 10\ndilate = 1", "images = 1\ndilate = 1\nthreshold = 0.4") + "[train]\nepochs = 0\n";
    let err = parse(Path::new("t.toml"), &text).unwrap_err();
    let ManifestError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["train.epochs", "sources[0].threshold", "sources[0].images"]);
    assert_eq!(problems[1].line, Some(7));
}

#[test]
fn sources_cue_and_folder_are_checked_against_each_other() {
    let text = format!("{GOOD}\n[[sources]]\nkind = \"folder\"\n\n[cue]\nclass = \"tree\"\nsources = [\"nobody\"]\n");
    let err = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
    for needle in [
        "`sources[2].kind` \"folder\" needs a [folder] dataset",
        "`cue.class` \"tree\" is not an object class (blob, thin)",
        "`cue.sources` \"nobody\" is not a source name",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
    let folder = "[folder]\npath = \"data\"\nclasses = [\"background\", \"cell\"]\n[[sources]]\nkind = \"manual\"\nimages = 4\n[[sources]]\nkind = \"folder\"\nmasks = \"painted\"\n";
    let err = parse(Path::new("d/t.toml"), folder).unwrap_err().to_string();
    assert!(err.contains("set folder.truth to the mask set that holds it"), "{err}");
    let m = parse(Path::new("d/t.toml"), &folder.replace("kind = \"manual\"\nimages = 4\n", "kind = \"heuristic\"\nimages = 4\n")).unwrap();
    let DataSpec::Folder(spec) = &m.data else { panic!() };
    assert_eq!(spec.root, Path::new("d/data"));
    assert_eq!(spec.required_sets, ["painted"]);
    assert_eq!(m.classes.names(), ["background", "cell"]);
}

#[test]
fn synthetic_sources_get_a_synthetic_test_set_by_default() {
    let text = GOOD.replace("kind = \"heuristic\"", "kind = \"synthetic\"");
    let m = parse(Path::new("t.toml"), &text).unwrap();
    assert_eq!(Some(m.synthetic_test), m.split.test.count());
    assert_eq!(parse(Path::new("t.toml"), GOOD).unwrap().synthetic_test, 0);
}

#[test]
fn added_seeds_are_validated_and_every_look_is_paid_for() {
    let m = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\nrepeats = 4\nmax_repeats = 9\n")).unwrap();
    // Rounds of 2, 2 and 1 seeds: four looks, each at 1 − 0.05 / 4.
    assert_eq!((m.study.most_repeats(), m.study.looks()), (9, 4));
    assert!((m.study.verdict_confidence() - 0.9875).abs() < 1e-12);
    let once = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\nrepeats = 4\n")).unwrap();
    assert_eq!((once.study.looks(), once.study.verdict_confidence()), (1, 0.95));
    let bad = format!("{GOOD}\n[study]\nrepeats = 4\nmax_repeats = 3\nrepeats_per_round = 0\n");
    let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
    assert!(err.contains("`study.max_repeats` must lie between study.repeats (4) and 100, got 3"), "{err}");
    assert!(err.contains("`study.repeats_per_round` must be at least 1"), "{err}");
}

#[test]
fn pseudo_label_dilation_names_object_classes_and_needs_pseudo_labels() {
    let m = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\ndilate_pseudo_labels = {{ thin = 1, blob = -0.5 }}\n")).unwrap();
    assert_eq!(m.pseudo_label_dilation.by_class, [(1, -0.5), (2, 1.0)], "class order, whatever the order written");
    assert!(parse(Path::new("t.toml"), GOOD).unwrap().pseudo_label_dilation.is_none());
    let reordered =
        format!("{GOOD}\n[world]\nclasses = [\"thin\", \"blob\"]\n[study]\ndilate_pseudo_labels = {{ thin = 1, blob = -0.5 }}\n");
    let m = parse(Path::new("t.toml"), &reordered).unwrap();
    assert_eq!(m.pseudo_label_dilation.by_class, [(1, 1.0), (2, -0.5)], "class order, not the names' order");
    let bad = format!(
        "{GOOD}\n[study]\nstrategies = [\"self\", \"ema\"]\nmix = 0\ndilate_pseudo_labels = {{ tree = 1, background = 1, thin = 0, blob = 9 }}\n"
    );
    let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
    for expected in [
        "`study.dilate_pseudo_labels.tree` names no object class (blob, thin)",
        "`study.dilate_pseudo_labels.background` names no object class",
        "`study.dilate_pseudo_labels.thin` is the px the class grows (negative: shrinks), non-zero and at most 8 either way, got 0",
        "`study.dilate_pseudo_labels.blob` is the px",
        "`study.dilate_pseudo_labels` does not apply to the \"ema\" strategy",
        "`study.dilate_pseudo_labels` needs pseudo-labels to act on: study.mix is 0",
    ] {
        assert!(err.contains(expected), "{expected} not in {err}");
    }
}

#[test]
fn pseudo_label_modes_are_one_name_or_a_list_and_accumulate_needs_two_generations() {
    assert_eq!(parse(Path::new("t.toml"), GOOD).unwrap().pseudo_labels, [PseudoLabels::Replace]);
    let one = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\ngenerations = 2\npseudo_labels = \"accumulate\"\n")).unwrap();
    assert_eq!(one.pseudo_labels, [PseudoLabels::Accumulate]);
    let both = format!("{GOOD}\n[study]\ngenerations = 2\npseudo_labels = [\"accumulate\", \"replace\"]\n");
    assert_eq!(parse(Path::new("t.toml"), &both).unwrap().pseudo_labels, [PseudoLabels::Accumulate, PseudoLabels::Replace]);
    let bad = format!(
        "{GOOD}\n[study]\nstrategies = [\"self\", \"ema\", \"ensemble\"]\nmix = 0\npseudo_labels = [\"accumulate\", \"keep\", \"accumulate\"]\n"
    );
    let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
    for expected in [
        "`study.pseudo_labels` names no mode: \"keep\" (allowed: \"replace\", \"accumulate\")",
        "`study.pseudo_labels` names \"accumulate\" twice",
        "\"accumulate\" differs from \"replace\" from generation 2 on; study.generations is 1",
        "\"accumulate\" does not apply to the \"ema\" strategy",
        "\"accumulate\" needs pseudo-labels to keep: study.mix is 0",
        "\"accumulate\" follows one teacher's lineage, so it runs with \"self\" and \"cross\", not \"ensemble\"",
    ] {
        assert!(err.contains(expected), "{expected} not in {err}");
    }
    let wrong_type = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\npseudo_labels = 3\n")).unwrap_err().to_string();
    assert!(wrong_type.contains("expected a name or a list of names"), "{wrong_type}");
}

#[test]
fn selections_mix_and_targets_are_validated_with_what_is_allowed() {
    let m = parse(Path::new("t.toml"), GOOD).unwrap();
    assert_eq!((m.selections.clone(), m.study.mix, m.targets.len()), (vec![Selection::all()], 1.0, 0));
    let good = format!(
        "targets = [\"miou >= 0.8\"]\n{GOOD}\n[study]\nmix = 0.5\n[[study.selections]]\nkind = \"confidence\"\n\
         [[study.selections]]\nkind = \"hardness\"\nkeep = 0.3\n[[study.selections]]\nkind = \"verifier\"\nmin_area = 5\n\
         shape = {{ thin = {{ max_fill = 0.5 }} }}\n"
    );
    let m = parse(Path::new("t.toml"), &good).unwrap();
    let names: Vec<&str> = m.selections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["confidence0.9", "easiest0.3", "verifier"]);
    let SelectionRule::Verifier(rules) = &m.selections[2].rule else { panic!() };
    assert_eq!(rules.shapes, [ShapeRule { class: 2, min_fill: 0.0, max_fill: 0.5 }]);
    assert_eq!((m.study.mix, m.targets[0].text.as_str()), (0.5, "miou >= 0.8"));

    let bad = format!(
        "targets = [\"iou > 1\"]\n{GOOD}\n[study]\nmix = 1.5\n[[study.selections]]\nkind = \"confidence\"\nkeep = 0.5\n\
         [[study.selections]]\nkind = \"hardness\"\nkeep = 1.5\n[[study.selections]]\nkind = \"verifier\"\n\
         [[study.selections]]\nkind = \"verifier\"\nname = \"verifier\"\nshape = {{ tree = {{ min_fill = 0.5 }} }}\n\
         [[study.selections]]\nthreshold = 0.5\n"
    );
    let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
    for needle in [
        "`study.mix` is the pseudo-labels' share of the loss weight in [0, 1]",
        "`study.selections[0].keep` applies only to kind = \"hardness\"",
        "`study.selections[1].keep` must lie in (0, 1], got 1.5",
        "`study.selections[2]` a verifier needs at least one rule",
        "`study.selections[3].shape.tree` names no object class (blob, thin)",
        "`study.selections[3].name` \"verifier\" names two selections",
        "`study.selections[4].kind` is missing; allowed: \"all\", \"confidence\", \"hardness\", \"verifier\"",
        "`targets[0]` \"iou > 1\": unknown metric `iou`; allowed: miou,",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
}
