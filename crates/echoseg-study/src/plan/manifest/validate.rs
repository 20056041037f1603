//! `validate`: every section of a `RawManifest` checked, one function per section, every
//! problem collected with its line before failing.

use super::*;

/// `[label_issues]`, with its defaults filled in.
fn label_issue_settings(raw: Option<&RawLabelIssues>, sources: usize, p: &mut Problems<'_>) -> Option<LabelIssueSettings> {
    let raw = raw?;
    let settings = LabelIssueSettings {
        folds: raw.folds.unwrap_or(2),
        temperature: raw.temperature.unwrap_or(0.1),
        worst: raw.worst.unwrap_or(4),
        export_probabilities: raw.export_probabilities.unwrap_or(false),
        leave_source_out: raw.leave_source_out.unwrap_or(false),
    };
    if !(2..=10).contains(&settings.folds) {
        p.add(
            "label_issues.folds",
            format!("must be between 2 and 10 (each fold is scored by networks trained on the others), got {}", settings.folds),
        );
    }
    if !(settings.temperature.is_finite() && settings.temperature > 0.0) {
        p.add("label_issues.temperature", format!("must be a number > 0 (cleanlab's default is 0.1), got {}", settings.temperature));
    }
    if settings.worst > 50 {
        p.add("label_issues.worst", format!("must be at most 50 images per source, got {}", settings.worst));
    }
    if settings.leave_source_out && sources < 2 {
        p.add(
            "label_issues.leave_source_out",
            format!("needs at least two label sources (each is scored by networks trained on the others), the manifest has {sources}"),
        );
    }
    Some(settings)
}

fn source_spec(i: usize, s: &RawSource, classes: &ClassTable, folder: bool, p: &mut Problems<'_>) -> Option<SourceSpec> {
    let at = |k: &str| format!("sources[{i}].{k}");
    let Some(kind) = s.kind else {
        p.add(at("kind"), format!("is missing; allowed: {}", quoted(&SourceKind::ALL.map(SourceKind::name))));
        return None;
    };
    let kind_name = kind.name();
    let only = |keys: &[(&str, bool)], allowed: SourceKind, p: &mut Problems<'_>| {
        for (key, set) in keys {
            if *set && kind != allowed {
                p.add(at(key), format!("applies only to kind = \"{}\", not \"{kind_name}\"", allowed.name()));
            }
        }
    };
    only(
        &[
            ("dilate", s.dilate.is_some()),
            ("jitter", s.jitter.is_some()),
            ("simplify", s.simplify.is_some()),
            ("miss_small_below", s.miss_small_below.is_some()),
            ("skip_thin", s.skip_thin.is_some()),
            ("class_slip", s.class_slip.is_some()),
            ("confusion", s.confusion.is_some()),
        ],
        SourceKind::Manual,
        p,
    );
    only(
        &[
            ("threshold", s.threshold.is_some()),
            ("min_separation", s.min_separation.is_some()),
            ("opening", s.opening.is_some()),
            ("closing", s.closing.is_some()),
            ("min_area", s.min_area.is_some()),
            ("thin_below", s.thin_below.is_some()),
            ("box_fill_above", s.box_fill_above.is_some()),
        ],
        SourceKind::Heuristic,
        p,
    );
    only(&[("masks", s.masks.is_some())], SourceKind::Folder, p);
    // A folder source is named after its mask set unless it has a name of its own.
    let name = s.name.clone().or_else(|| s.masks.clone()).unwrap_or_else(|| kind_name.to_string());
    if let Some(msg) = name_problem(&name) {
        p.add(at("name"), msg);
    }
    match (kind, s.images) {
        (SourceKind::Folder, Some(_)) => p.add(
            at("images"),
            "applies to simulated sources; a folder source labels every image its mask set covers, and the study draws the split ([split] test, pool, validation)",
        ),
        (SourceKind::Folder, None) => {}
        // On a folder dataset a simulated source labels every training image it can unless capped.
        (_, None) if folder => {}
        (_, images) if images.unwrap_or(0) < 2 => {
            p.add(at("images"), format!("must be at least 2 (training plus validation images), got {}", images.unwrap_or(0)))
        }
        _ => {}
    }
    let px = |p: &mut Problems<'_>, key: &str, value: Option<f32>, lo: f32, hi: f32| {
        let v = value.unwrap_or(0.0);
        if !(lo..=hi).contains(&v) {
            p.add(at(key), format!("must lie in [{lo}, {hi}], got {v}"));
        }
        v
    };
    let labeller = match kind {
        SourceKind::Exact => Labeller::Simulated(LabelSource::Exact),
        SourceKind::Synthetic => Labeller::Simulated(LabelSource::Synthetic),
        SourceKind::Folder => Labeller::Masks(s.masks.clone().unwrap_or_else(|| name.clone())),
        SourceKind::Manual => {
            let dilate = px(p, "dilate", s.dilate, -8.0, 8.0);
            let jitter = px(p, "jitter", s.jitter, 0.0, 8.0);
            let simplify = px(p, "simplify", s.simplify, 0.0, 16.0);
            let class_slip = px(p, "class_slip", s.class_slip, 0.0, 1.0);
            let confusion = match s.confusion.as_deref() {
                None => None,
                Some([from, to]) => match (classes.index_of(from).filter(|&c| c > 0), classes.index_of(to).filter(|&c| c > 0)) {
                    (Some(f), Some(t)) if f != t => Some((f, t)),
                    _ => {
                        p.add(at("confusion"), format!("must name two different object classes ({})", classes.names()[1..].join(", ")));
                        None
                    }
                },
                Some(_) => {
                    p.add(at("confusion"), "must be [\"from\", \"to\"], two class names");
                    None
                }
            };
            Labeller::Simulated(LabelSource::Manual(ManualBias {
                dilate,
                jitter,
                simplify,
                miss_small_below: s.miss_small_below.unwrap_or(0),
                skip_thin: s.skip_thin.unwrap_or(false),
                class_slip,
                confusion,
            }))
        }
        SourceKind::Heuristic => {
            let d = HeuristicRules::default();
            let threshold = match s.threshold {
                Some(t) if !(0.0..=1.0).contains(&t) => {
                    p.add(at("threshold"), format!("is a grey level in [0, 1], got {t}"));
                    Threshold::Otsu
                }
                Some(t) => Threshold::Fixed(t),
                None => Threshold::Otsu,
            };
            let opening = px(p, "opening", s.opening, 0.0, 8.0);
            let closing = px(p, "closing", s.closing, 0.0, 8.0);
            Labeller::Simulated(LabelSource::Heuristic(HeuristicRules {
                threshold,
                min_separation: s.min_separation.unwrap_or(d.min_separation),
                opening,
                closing,
                min_area: s.min_area.unwrap_or(d.min_area),
                thin_below: s.thin_below.unwrap_or(d.thin_below),
                box_fill_above: s.box_fill_above.unwrap_or(d.box_fill_above),
            }))
        }
    };
    let share = s.share.unwrap_or(1.0);
    if !(share.is_finite() && share > 0.0) {
        p.add(at("share"), format!("is a weight > 0, got {share}"));
    }
    Some(SourceSpec { name, kind, labeller, images: s.images, share })
}

/// What is wrong with `jobs` runs at once, if anything.
fn jobs_problem(jobs: usize) -> Option<String> {
    const MOST_JOBS: usize = 1024;
    (jobs > MOST_JOBS).then(|| format!("must be between 0 (one per worker thread) and {MOST_JOBS}, got {jobs}"))
}

impl Manifest {
    /// The manifest with `jobs` runs trained at once (`--jobs`), checked as its `jobs` key is;
    /// the manifest's copy is left as written, since jobs change no result.
    pub fn with_jobs(mut self, jobs: usize) -> Result<Self, ManifestError> {
        if let Some(message) = jobs_problem(jobs) {
            return Err(ManifestError::Jobs { jobs, message });
        }
        self.jobs = jobs;
        Ok(self)
    }
}

/// Checks every value of `raw`, collecting all problems before failing.
pub fn validate(path: &Path, text: &str, raw: RawManifest) -> Result<Manifest, ManifestError> {
    let mut p = Problems { text, list: Vec::new() };
    // Sections in the order their problems are listed; later ones are checked against earlier ones.
    let name = study_name(path, &raw, &mut p);
    if let Some(problem) = jobs_problem(raw.jobs) {
        p.add("jobs", problem);
    }
    let (data, classes) = data_spec(path, &raw, &mut p);
    let train = checked(raw.train.clone(), "train", &mut p);
    let sources = source_specs(&raw.sources, &data, &classes, &mut p);
    let cue = cue_spec(raw.cue.as_ref(), &data, &classes, &sources, &mut p);
    let (split, synthetic_test) = split_spec(&raw, &data, &sources, &mut p);
    let (networks, byol) = network_specs(&raw, &classes, &mut p);
    let selections = study_problems(&raw.study, &networks, &classes, &mut p);
    let pseudo_label_dilation = pseudo_label_dilation(&raw.study, &classes, &mut p);
    let pseudo_labels = pseudo_label_modes(&raw.study, &mut p);
    let ema = checked(raw.study.ema.clone(), "study.ema", &mut p);
    let targets = targets(&raw.targets, &mut p);
    let verdict = verdict_rules(&raw.verdict, &mut p);
    let label_issues = label_issue_settings(raw.label_issues.as_ref(), sources.len(), &mut p);

    // Settings that failed their check are None, and their problems are in the list.
    let (Some(train), Some(ema), true) = (train, ema, p.list.is_empty()) else {
        return Err(ManifestError::Invalid { path: path.to_path_buf(), problems: p.list });
    };
    let data_key = data_key(&raw, &data);
    Ok(Manifest {
        path: path.to_path_buf(),
        text: text.to_string(),
        name,
        seed: raw.seed,
        device: raw.device,
        threads: raw.threads,
        jobs: raw.jobs,
        data,
        classes,
        sources,
        cue,
        split,
        synthetic_test,
        networks,
        inference_batch: raw.nets.inference_batch,
        tiling: Tiling::with_side(raw.nets.inference_tile),
        byol,
        train,
        study: raw.study,
        ema,
        selections,
        pseudo_label_dilation,
        pseudo_labels,
        targets,
        verdict,
        label_issues,
        data_key,
    })
}

/// The `[verdict]` table as rules; a minimum must be a finite number ≥ 0.
fn verdict_rules(raw: &RawVerdict, p: &mut Problems<'_>) -> VerdictRules {
    let mut rules = VerdictRules::default();
    for bias in Bias::ALL {
        let Some(minimum) = raw.written(bias) else { continue };
        if minimum.is_finite() && minimum >= 0.0 {
            rules.minimum.insert(bias, minimum);
        } else {
            p.add(
                format!("verdict.{}", bias.name()),
                format!("must be a number ≥ 0 (the smallest change called a direction), got {minimum}"),
            );
        }
    }
    rules
}

/// Names as a manifest writes them, `"a", "b", "c"`, for messages that say what is allowed.
fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// Like [`quoted`], the last two joined by "or": `"a", "b" or "c"`.
fn quoted_or(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or \"{last}\"", quoted(rest)),
        _ => quoted(names),
    }
}

/// `name`: the study's name, by default the manifest's file name.
fn study_name(path: &Path, raw: &RawManifest, p: &mut Problems<'_>) -> String {
    let name =
        raw.name.clone().unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "study".into()));
    if let Some(msg) = name_problem(&name) {
        p.add("name", msg);
    }
    name
}

/// `[world]` or `[folder]`: where the images come from, and their classes.
fn data_spec(path: &Path, raw: &RawManifest, p: &mut Problems<'_>) -> (DataSpec, ClassTable) {
    match (&raw.world, &raw.folder) {
        (Some(_), Some(_)) => {
            p.add("folder", "and [world] exclude each other: a study uses either the procedural world or a folder dataset");
            (DataSpec::World(WorldConfig::default()), WorldConfig::default().class_table())
        }
        (_, Some(f)) => {
            if f.classes.len() < 2 {
                p.add("folder.classes", "needs the background and at least one object class");
            }
            if f.classes.len() > 255 {
                p.add("folder.classes", "may list at most 255 classes");
            }
            if let Some(c) = &f.colours
                && c.len() != f.classes.len()
            {
                p.add("folder.colours", format!("lists {} colours for {} classes; give one per class", c.len(), f.classes.len()));
            }
            let root = if f.path.is_absolute() { f.path.clone() } else { path.parent().unwrap_or(Path::new(".")).join(&f.path) };
            let required = raw
                .sources
                .iter()
                .filter(|s| s.kind == Some(SourceKind::Folder))
                .map(|s| s.masks.clone().or_else(|| s.name.clone()).unwrap_or_else(|| "folder".into()))
                .collect();
            let classes = ClassTable::new(f.classes.clone());
            let spec =
                FolderSpec { root, classes: classes.clone(), colours: f.colours.clone(), truth: f.truth.clone(), required_sets: required };
            (DataSpec::Folder(spec), classes)
        }
        (world, None) => {
            let world = world.clone().unwrap_or_default();
            for (key, msg) in world.problems() {
                p.add(format!("world.{key}"), msg);
            }
            let classes = world.class_table();
            (DataSpec::World(world), classes)
        }
    }
}

/// `settings` (`[train]`, `[nets.byol]`, `[study.ema]`) checked, or None with their problems
/// added under `prefix`.
fn checked<S: Settings>(settings: S, prefix: &str, p: &mut Problems<'_>) -> Option<Valid<S>> {
    settings.validate().map_err(|problems| problems.into_iter().for_each(|(key, msg)| p.add(format!("{prefix}.{key}"), msg))).ok()
}

/// `[[sources]]`: each source on its own, then against the others and the data.
fn source_specs(raw: &[RawSource], data: &DataSpec, classes: &ClassTable, p: &mut Problems<'_>) -> Vec<SourceSpec> {
    let mut sources: Vec<SourceSpec> = Vec::new();
    if raw.is_empty() {
        let kinds = quoted_or(&SourceKind::ALL.map(SourceKind::name));
        p.add("sources", format!("needs at least one [[sources]] table (kind = {kinds})"));
    }
    for (i, s) in raw.iter().enumerate() {
        let Some(spec) = source_spec(i, s, classes, matches!(data, DataSpec::Folder(_)), p) else { continue };
        if sources.iter().any(|o| o.name == spec.name) {
            p.add(format!("sources[{i}].name"), format!("\"{}\" is used by two sources; give each a distinct name", spec.name));
        }
        match (data, spec.kind) {
            (DataSpec::World(_), SourceKind::Folder) => p.add(format!("sources[{i}].kind"), "\"folder\" needs a [folder] dataset"),
            (DataSpec::Folder(_), SourceKind::Synthetic) => {
                p.add(format!("sources[{i}].kind"), "\"synthetic\" renders the procedural world and cannot label a folder dataset")
            }
            (DataSpec::Folder(f), SourceKind::Exact | SourceKind::Manual) if f.truth.is_none() => p.add(
                format!("sources[{i}].kind"),
                format!("\"{}\" simulates errors on the exact truth; set folder.truth to the mask set that holds it", spec.kind.name()),
            ),
            _ => {}
        }
        sources.push(spec);
    }
    sources
}

/// `[cue]`, against the classes and the source names.
fn cue_spec(raw: Option<&RawCue>, data: &DataSpec, classes: &ClassTable, sources: &[SourceSpec], p: &mut Problems<'_>) -> Option<CueSpec> {
    let c = raw?;
    if matches!(data, DataSpec::Folder(_)) {
        p.add("cue", "needs the procedural world: the tint is drawn when images are rendered");
        return None;
    }
    let class = classes.index_of(&c.class).filter(|&i| i > 0);
    if class.is_none() {
        p.add("cue.class", format!("\"{}\" is not an object class ({})", c.class, classes.names()[1..].join(", ")));
    }
    if !(0.0..=1.0).contains(&c.strength) {
        p.add("cue.strength", format!("is a probability in [0, 1], got {}", c.strength));
    }
    let mut idx = Vec::new();
    for n in &c.sources {
        match sources.iter().position(|s| &s.name == n) {
            Some(i) => idx.push(i),
            None => p.add(
                "cue.sources",
                format!("\"{n}\" is not a source name ({})", sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")),
            ),
        }
    }
    if c.sources.is_empty() {
        idx = (0..sources.len()).collect();
    }
    class.map(|class| CueSpec { class, sources: idx, strength: c.strength })
}

/// `[split]` with its defaults, which depend on where the images come from; also returns the
/// number of synthetic-style test images.
fn split_spec(raw: &RawManifest, data: &DataSpec, sources: &[SourceSpec], p: &mut Problems<'_>) -> (SplitSpec, usize) {
    let written = &raw.split;
    let validation = written.validation.unwrap_or(DEFAULT_VALIDATION);
    if !(0.0..0.9).contains(&validation) {
        p.add("split.validation", format!("is a share in [0, 0.9), got {validation}"));
    }
    let needs_pool = raw.study.generations > 0 || raw.nets.architectures.iter().any(|a| a.contains('+'));
    let (test, pool, overlap) = match data {
        DataSpec::World(_) => {
            for (key, size) in [("split.test", written.test), ("split.pool", written.pool)] {
                if let Some(SplitSize::Share(s)) = size {
                    p.add(key, format!("is a share ({s}), but the procedural world has no total to take it of; give a number of images"));
                }
            }
            (written.test.unwrap_or(WORLD_TEST), written.pool.unwrap_or(WORLD_POOL), Overlap::All)
        }
        DataSpec::Folder(_) => {
            let overlap = raw.folder.as_ref().and_then(|f| f.overlap).unwrap_or_default();
            (
                written.test.unwrap_or(FOLDER_TEST),
                written.pool.unwrap_or(if needs_pool { FOLDER_POOL } else { SplitSize::Count(0) }),
                overlap,
            )
        }
    };
    for (i, (s, spec)) in raw.sources.iter().zip(sources).enumerate() {
        if s.share.is_some() && overlap != Overlap::Assign {
            p.add(
                format!("sources[{i}].share"),
                format!("weighs {} when folder.overlap = \"assign\" draws an image's teacher; this study does not draw", spec.name),
            );
        }
    }
    if test.is_zero() {
        p.add("split.test", "must be at least 1 image");
    }
    if raw.study.generations > 0 && pool.is_zero() {
        p.add("split.pool", "must be at least 1 image when study.generations > 0");
    }
    let has_synthetic = sources.iter().any(|s| s.kind == SourceKind::Synthetic);
    let synthetic_test = match (written.synthetic_test, data) {
        (Some(n), DataSpec::Folder(_)) if n > 0 => {
            p.add("split.synthetic_test", "needs the procedural world");
            0
        }
        (Some(n), _) => n,
        (None, DataSpec::World(_)) if has_synthetic => test.count().unwrap_or(0),
        (None, _) => 0,
    };
    (SplitSpec { validation, test, pool, overlap }, synthetic_test)
}

/// `[nets]`: the models, their sizes, BYOL pre-training (checked when a model uses it) and inference.
fn network_specs(raw: &RawManifest, classes: &ClassTable, p: &mut Problems<'_>) -> (Vec<NetworkSpec>, Option<Valid<ByolConfig>>) {
    let mut networks: Vec<NetworkSpec> = Vec::new();
    let architectures: Vec<&str> = Architecture::ALL.iter().map(|a| a.name()).collect();
    if raw.nets.architectures.is_empty() {
        p.add("nets.architectures", format!("needs at least one of {}", quoted(&architectures)));
    }
    for written in &raw.nets.architectures {
        let Some((a, pretrain)) = model_name(written) else {
            p.add(
                "nets.architectures",
                format!(
                    "\"{written}\" is not a model: write an architecture ({}), optionally followed by +{} for pre-training",
                    architectures.join(", "),
                    Pretrain::ALL.map(|p| p.name()).join(" or +")
                ),
            );
            continue;
        };
        let (w, d) = a.default_shape();
        let shape = raw.nets.shape(a);
        let spec = NetworkSpec {
            architecture: a,
            width: shape.and_then(|s| s.width).unwrap_or(w),
            depth: shape.and_then(|s| s.depth).unwrap_or(d),
            inputs: 3,
            classes: classes.len(),
            pretrain,
        };
        if networks.iter().any(|n| n.name() == spec.name()) {
            p.add("nets.architectures", format!("lists \"{}\" twice", spec.name()));
            continue;
        }
        if !networks.iter().any(|n| n.architecture == a) {
            for (key, msg) in spec.problems() {
                p.add(format!("nets.{a}.{key}"), msg);
            }
        }
        networks.push(spec);
    }
    let mut byol = None;
    if networks.iter().any(|n| n.pretrain.is_some()) {
        byol = checked(raw.nets.byol.clone(), "nets.byol", p);
        if raw.split.pool.is_some_and(SplitSize::is_zero) {
            p.add("split.pool", "must be at least 1: BYOL pre-trains on the unlabelled pool");
        }
    }
    if raw.nets.inference_batch == 0 {
        p.add("nets.inference_batch", "must be at least 1");
    }
    if !(16..=4096).contains(&raw.nets.inference_tile) {
        p.add("nets.inference_tile", format!("must be between 16 and 4096 px, got {}", raw.nets.inference_tile));
    }
    (networks, byol)
}

/// `[study]`: strategies against the models, generations, repeats, mix and selections (`ema` is
/// checked into its settings apart); returns the validated selections.
fn study_problems(study: &StudySettings, networks: &[NetworkSpec], classes: &ClassTable, p: &mut Problems<'_>) -> Vec<Selection> {
    if study.generations > 0 && study.strategies.is_empty() {
        let strategies = quoted(&Strategy::ALL.map(Strategy::name));
        p.add("study.strategies", format!("needs at least one of {strategies} when study.generations > 0"));
    }
    for committee in [Strategy::Ensemble, Strategy::Consensus] {
        if study.strategies.contains(&committee) && networks.len() < 3 {
            p.add(
                "study.strategies",
                format!("\"{}\" needs at least three architectures in nets.architectures (two teachers per student)", committee.name()),
            );
        }
    }
    if study.strategies.contains(&Strategy::Cross) && networks.len() < 2 {
        p.add("study.strategies", format!("\"{}\" needs at least two architectures in nets.architectures", Strategy::Cross.name()));
    }
    if study.generations > 10 {
        p.add("study.generations", format!("must be at most 10, got {}", study.generations));
    }
    if !(1..=100).contains(&study.repeats) {
        p.add("study.repeats", format!("must be between 1 and 100, got {}", study.repeats));
    }
    if let Some(most) = study.max_repeats
        && !(study.repeats..=100).contains(&most)
    {
        p.add("study.max_repeats", format!("must lie between study.repeats ({}) and 100, got {most}", study.repeats));
    }
    if study.repeats_per_round == 0 {
        p.add("study.repeats_per_round", "must be at least 1 (seeds added per round)".to_string());
    }

    if !(0.0..=1.0).contains(&study.mix) {
        p.add(
            "study.mix",
            format!(
                "is the pseudo-labels' share of the loss weight in [0, 1] (1 = pseudo-labels only, 0 = the null arm: labels only), got {}",
                study.mix
            ),
        );
    }
    selections(&study.selections, classes, p)
}

/// `study.dilate_pseudo_labels`: object classes of the study, a finite non-zero number of px up to
/// 8, and pseudo-labels for it to act on (no `ema`, whose targets are made online, no null arm).
fn pseudo_label_dilation(study: &StudySettings, classes: &ClassTable, p: &mut Problems<'_>) -> PseudoLabelDilation {
    let mut by_class = Vec::new();
    for (name, &px) in &study.dilate_pseudo_labels {
        let at = format!("study.dilate_pseudo_labels.{name}");
        match classes.index_of(name).filter(|&c| c > 0) {
            None => p.add(at, format!("names no object class ({})", classes.names()[1..].join(", "))),
            Some(_) if !(px.is_finite() && px != 0.0 && px.abs() <= 8.0) => {
                p.add(at, format!("is the px the class grows (negative: shrinks), non-zero and at most 8 either way, got {px}"))
            }
            Some(class) => by_class.push((class, px)),
        }
    }
    // Applied one class after another, in class order, whatever order the manifest names them in.
    by_class.sort_by_key(|&(class, _)| class);
    if !study.dilate_pseudo_labels.is_empty() {
        if study.strategies.contains(&Strategy::Ema) {
            let why = "does not apply to the \"ema\" strategy, whose targets are made online; run it in a study of its own";
            p.add("study.dilate_pseudo_labels", why.to_string());
        }
        if study.mix == 0.0 {
            p.add("study.dilate_pseudo_labels", "needs pseudo-labels to act on: study.mix is 0 (the null arm)".to_string());
        }
    }
    PseudoLabelDilation { by_class }
}

/// `study.pseudo_labels`: known modes, each once; `accumulate` needs pseudo-labels of two
/// generations to keep (generations >= 2, no `ema`, no null arm).
fn pseudo_label_modes(study: &StudySettings, p: &mut Problems<'_>) -> Vec<PseudoLabels> {
    let key = "study.pseudo_labels";
    let mut modes = Vec::new();
    for name in &study.pseudo_labels {
        match PseudoLabels::from_name(name) {
            None => p.add(key, format!("names no mode: \"{name}\" (allowed: {})", quoted(&PseudoLabels::ALL.map(PseudoLabels::name)))),
            Some(m) if modes.contains(&m) => p.add(key, format!("names \"{name}\" twice")),
            Some(m) => modes.push(m),
        }
    }
    if study.pseudo_labels.is_empty() {
        p.add(key, format!("needs at least one of {}", quoted(&PseudoLabels::ALL.map(PseudoLabels::name))));
    }
    if modes.contains(&PseudoLabels::Accumulate) {
        if study.generations < 2 {
            let why = format!("\"accumulate\" differs from \"replace\" from generation 2 on; study.generations is {}", study.generations);
            p.add(key, why);
        }
        if study.strategies.contains(&Strategy::Ema) {
            p.add(
                key,
                "\"accumulate\" does not apply to the \"ema\" strategy, whose targets are made online; run it in a study of its own"
                    .to_string(),
            );
        }
        if study.mix == 0.0 {
            p.add(key, "\"accumulate\" needs pseudo-labels to keep: study.mix is 0 (the null arm)".to_string());
        }
        // A committee's members learned from different committees, so "the committee's earlier
        // pseudo-labels" names no set any run learned.
        for committee in [Strategy::Ensemble, Strategy::Consensus] {
            if study.strategies.contains(&committee) {
                let why = format!(
                    "\"accumulate\" follows one teacher's lineage, so it runs with \"self\" and \"cross\", not \"{}\"",
                    committee.name()
                );
                p.add(key, why);
            }
        }
    }
    modes
}

/// `targets`.
fn targets(raw: &[String], p: &mut Problems<'_>) -> Vec<Target> {
    let mut targets = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        match Target::parse(t) {
            Ok(t) => targets.push(t),
            Err(e) => p.add(format!("targets[{i}]"), e),
        }
    }
    targets
}

/// Everything that decides the images and their labels, as stable text. The world's split is
/// written with its defaults filled in, as it was when they were plain numbers, so run ids of
/// world studies outlive the change.
fn data_key(raw: &RawManifest, data: &DataSpec) -> String {
    #[derive(Serialize)]
    struct DataKey<'a> {
        seed: u64,
        world: &'a Option<WorldConfig>,
        folder: &'a Option<RawFolder>,
        sources: &'a [RawSource],
        cue: &'a Option<RawCue>,
        split: &'a Split,
    }
    let mut split = raw.split.clone();
    if let DataSpec::World(_) = data {
        split.validation = split.validation.or(Some(DEFAULT_VALIDATION));
        split.test = split.test.or(Some(WORLD_TEST));
        split.pool = split.pool.or(Some(WORLD_POOL));
    }
    serde_json::to_string(&DataKey {
        seed: raw.seed,
        world: &raw.world,
        folder: &raw.folder,
        sources: &raw.sources,
        cue: &raw.cue,
        split: &split,
    })
    .unwrap_or_default()
}

/// An architecture and pre-training from a model name as written (`unet`, `unet+byol`).
fn model_name(written: &str) -> Option<(Architecture, Option<Pretrain>)> {
    let (architecture, pretrain) = match written.split_once('+') {
        Some((a, p)) => (a, Some(Pretrain::ALL.into_iter().find(|x| x.name() == p)?)),
        None => (written, None),
    };
    Some((Architecture::ALL.into_iter().find(|a| a.name() == architecture)?, pretrain))
}

/// Validates `study.selections`; none written means `all`.
fn selections(raw: &[RawSelection], classes: &ClassTable, p: &mut Problems<'_>) -> Vec<Selection> {
    if raw.is_empty() {
        return vec![Selection::all()];
    }
    let mut out: Vec<Selection> = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let at = |k: &str| format!("study.selections[{i}].{k}");
        let Some(kind) = s.kind else {
            p.add(at("kind"), format!("is missing; allowed: {}", quoted(&SelectionKind::ALL.map(SelectionKind::name))));
            continue;
        };
        let only = |key: &str, set: bool, allowed: SelectionKind, p: &mut Problems<'_>| {
            if set && kind != allowed {
                p.add(at(key), format!("applies only to kind = \"{}\"", allowed.name()));
            }
        };
        only("threshold", s.threshold.is_some(), SelectionKind::Confidence, p);
        only("keep", s.keep.is_some(), SelectionKind::Hardness, p);
        for (key, set) in [("min_area", s.min_area.is_some()), ("max_components", s.max_components.is_some()), ("shape", s.shape.is_some())]
        {
            only(key, set, SelectionKind::Verifier, p);
        }
        let share = |key: &str, v: f32, p: &mut Problems<'_>| {
            if !(v > 0.0 && v <= 1.0) {
                p.add(at(key), format!("must lie in (0, 1], got {v}"));
            }
            v
        };
        let (rule, default_name) = match kind {
            SelectionKind::All => (SelectionRule::All, EVERY_LABEL.to_string()),
            SelectionKind::Confidence => {
                let threshold = share("threshold", s.threshold.unwrap_or(0.9), p);
                (SelectionRule::Confidence { threshold }, format!("confidence{threshold}"))
            }
            SelectionKind::Hardness => {
                let keep = share("keep", s.keep.unwrap_or(0.5), p);
                (SelectionRule::Hardness { keep }, format!("easiest{keep}"))
            }
            SelectionKind::Verifier => {
                let mut shapes = Vec::new();
                for (class, rule) in s.shape.iter().flatten() {
                    let Some(id) = classes.index_of(class).filter(|&c| c > 0) else {
                        p.add(at(&format!("shape.{class}")), format!("names no object class ({})", classes.names()[1..].join(", ")));
                        continue;
                    };
                    let (min_fill, max_fill) = (rule.min_fill.unwrap_or(0.0), rule.max_fill.unwrap_or(1.0));
                    if !(0.0..=1.0).contains(&min_fill) || !(0.0..=1.0).contains(&max_fill) || min_fill > max_fill {
                        p.add(
                            at(&format!("shape.{class}")),
                            format!("needs 0 <= min_fill <= max_fill <= 1 (shares of the bounding box), got {min_fill} and {max_fill}"),
                        );
                    }
                    shapes.push(ShapeRule { class: id, min_fill, max_fill });
                }
                if s.max_components == Some(0) {
                    p.add(at("max_components"), "must be at least 1 (leave it out for no limit)");
                }
                let rules = VerifierRules { min_area: s.min_area.unwrap_or(0), max_components: s.max_components, shapes };
                if rules == VerifierRules::default() {
                    p.add(format!("study.selections[{i}]"), "a verifier needs at least one rule: min_area, max_components or shape");
                }
                (SelectionRule::Verifier(rules), "verifier".to_string())
            }
        };
        let name = s.name.clone().unwrap_or(default_name);
        if let Some(msg) = name_problem(&name) {
            p.add(at("name"), msg);
        } else if out.iter().any(|o| o.name == name) {
            p.add(at("name"), format!("\"{name}\" names two selections; give each its own name"));
        }
        out.push(Selection { name, rule });
    }
    out
}

/// Names become directory names: no separators, no leading dot, nothing invisible.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 100 {
        return Some(format!("must be 1 to 100 characters, got {}", name.len()));
    }
    if name.starts_with('.') || name.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Some(format!("\"{}\" may not start with '.' or contain '/', '\\' or control characters", name.escape_debug()));
    }
    None
}
