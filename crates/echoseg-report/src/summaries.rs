//! The tables and sentences the report's sections show, built from the results rows.

use std::collections::{BTreeSet, HashMap};

use echoseg_agree::{Bias, BootstrapConfig, MAX_SEEDS_NEEDED, Metric, Verdict};
use echoseg_study::read::PretrainingVerdict;
use echoseg_study::read::Provenance;
use echoseg_study::read::Treatment;
use echoseg_study::read::{Judgement, Target};

use crate::figures::{SELECTION_BIASES, groups, sort_by_name};
use crate::html::{Table, cell, escape, interval_cell, number, number_text, with_interval};
use echoseg_study::read::{GapRow, PretrainingRow, ResultRow, SummaryRow, TargetRow, VerdictRow, answer_rows};

/// The mean of `metric` over the rows `subject` picks; `None` when there are none.
pub(crate) fn metric_of(rows: &[ResultRow], subject: impl Fn(&ResultRow) -> bool, metric: &Metric) -> Option<f64> {
    let values: Vec<f64> = rows.iter().filter(|r| subject(r) && &r.metric == metric).map(|r| r.value).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Whether the study trained exact-label ceilings (only studies of the procedural world do).
pub(crate) fn has_ceiling(summary: &[SummaryRow]) -> bool {
    summary.iter().any(|r| r.treatment == Treatment::Ceiling)
}

/// The runs whose test predictions collapsed (their `collapsed` row is 1).
fn collapsed_runs(rows: &[ResultRow]) -> BTreeSet<&str> {
    rows.iter().filter(|r| r.is_model() && r.metric == Metric::Collapsed && r.value > 0.5).map(|r| r.run.as_str()).collect()
}

/// The lead paragraph of a study with truth: the sources' offsets, then each architecture's
/// mIoU and offset at generation 0 and at the last generation (collapsed runs left out).
pub(crate) fn lead(rows: &[ResultRow], models: &[String]) -> String {
    let boundary_offset = Metric::Bias(Bias::BoundaryOffset);
    let sources: Vec<String> = rows
        .iter()
        .filter(|r| r.is_source() && r.metric == boundary_offset)
        .map(|r| format!("{} ({:+.2} px boundary offset)", r.model, r.value))
        .collect();
    let max_gen = rows.iter().filter(|r| r.is_model()).map(|r| r.generation).max().unwrap_or(0);
    let mut parts = vec![format!("Trained on mixed labels from {}:", sources.join(" and "))];
    // Means over the runs that still segment, as the verdicts count them (the warnings list the rest).
    let collapsed = collapsed_runs(rows);
    for m in models {
        let at = |g: i64, s: &Treatment, metric: &Metric| {
            let sound = |r: &ResultRow| r.is_model() && r.chain && &r.model == m && r.generation == g && &r.treatment == s;
            metric_of(rows, |r| sound(r) && !collapsed.contains(r.run.as_str()), metric).or_else(|| metric_of(rows, sound, metric))
        };
        let labels = Treatment::Labels;
        let (Some(miou), Some(offset)) = (at(0, &labels, &Metric::Miou), at(0, &labels, &boundary_offset)) else { continue };
        let mut sentence = format!("{m} reached mIoU {miou:.3} with a boundary offset of {offset:+.2} px");
        let later: Vec<String> = groups(rows)
            .into_iter()
            .filter(|(g, _)| *g == max_gen && max_gen > 0)
            .filter_map(|(g, s)| {
                at(g, &s, &boundary_offset).zip(at(g, &s, &Metric::Miou)).map(|(o, q)| format!("{o:+.2} px (mIoU {q:.3}) with {s}"))
            })
            .collect();
        if !later.is_empty() {
            sentence.push_str(&format!(
                "; after {max_gen} generation{} of pseudo-labels: {}",
                if max_gen == 1 { "" } else { "s" },
                later.join(", ")
            ));
        }
        parts.push(sentence + ".");
    }
    parts.join(" ")
}

pub(crate) fn summary_of(summary: &[SummaryRow], g: i64, s: &Treatment, model: &str, teacher: &str, metric: &Metric) -> Option<[f64; 3]> {
    summary
        .iter()
        .find(|r| r.generation == g && &r.treatment == s && r.model == model && r.teacher == teacher && &r.metric == metric)
        .map(|r| [r.estimate, r.low, r.high])
}

/// The answer at a glance: one row per bias and treatment, one column per architecture, at the
/// last generation. Each cell gives the architecture's value on exact labels (the ceiling), at
/// generation 0 and after, and is coloured by the verdict (earlier generations are in verdicts.csv).
/// Only the treatments `shown` accepts get rows, so that selections can fold away below.
pub(crate) fn verdict_table(
    verdicts: &[VerdictRow],
    summary: &[SummaryRow],
    models: &[String],
    shown: impl Fn(&Treatment) -> bool,
) -> Table {
    let last = verdicts.iter().map(|v| v.generation).max().unwrap_or(0);
    let at_last: Vec<&VerdictRow> = verdicts.iter().filter(|v| v.generation == last && shown(&v.treatment)).collect();
    let order = |bias: Bias| Bias::COUNTED.iter().position(|b| *b == bias).unwrap_or(Bias::COUNTED.len());
    let mut keys: Vec<(usize, &Treatment)> = at_last.iter().map(|v| (order(v.bias), &v.treatment)).collect();
    keys.sort_by_cached_key(|(b, t)| (*b, t.to_string()));
    keys.dedup();
    let columns: Vec<&String> = models.iter().filter(|m| at_last.iter().any(|v| &v.model == *m)).collect();
    let mut header: Vec<String> = vec!["bias".into(), "strategy".into()];
    let before = if has_ceiling(summary) { "exact labels | generation 0" } else { "generation 0" };
    header.extend(columns.iter().map(|m| format!("{m}: {before} → {last}")));
    let rows = keys
        .iter()
        .filter_map(|&(b, treatment)| {
            let bias = *Bias::COUNTED.get(b)?;
            let signed = bias.signed();
            let show = |x: f64| number_text(x, 2, signed);
            let mut cells = vec![cell(&bias.display_name()), cell(&treatment.to_string())];
            for m in &columns {
                cells.push(match at_last.iter().find(|v| v.bias == bias && &v.treatment == treatment && &v.model == *m) {
                    Some(v) => {
                        let ceiling = summary_of(summary, 0, &Treatment::Ceiling, m, "", &Metric::Bias(bias))
                            .map(|c| format!("{} | ", show(c[0])))
                            .unwrap_or_default();
                        let collapsed = if v.collapsed > 0 { format!(", {} collapsed left out", v.collapsed) } else { String::new() };
                        // Compared with its teacher (or a committee's members), not its own generation 0: say whose value it is.
                        let whose = if v.against.is_empty() || v.against == **m { String::new() } else { format!("{} ", v.against) };
                        format!(
                            "<td class=\"verdict {}\">{ceiling}{}{} → {}<br><small>{}{}{collapsed}</small></td>",
                            escape(v.verdict.name()),
                            escape(&whose),
                            show(v.before[0]),
                            escape(&with_interval(v.after, 2, signed)),
                            escape(v.verdict.name()),
                            escape(&seeds_needed_note(v)),
                        )
                    }
                    None => cell("–"),
                });
            }
            Some(cells)
        })
        .collect();
    Table { header, rows }
}

/// Where seeds were added to undecided verdicts (`study.max_repeats`) and what their intervals
/// pay for the extra looks, in two sentences; `None` when the study looked at its verdicts once.
pub(crate) fn added_seeds(verdicts: &[VerdictRow]) -> Option<String> {
    let confidence = verdicts.iter().filter_map(|v| v.confidence).fold(0.0, f64::max);
    if confidence <= BootstrapConfig::default().confidence + 1e-9 {
        return None;
    }
    let seeds: Vec<i64> = verdicts.iter().map(|v| v.repeats + v.collapsed).collect();
    let (fewest, most) = (seeds.iter().min()?, seeds.iter().max()?);
    Some(format!(
        "Seeds were added, a round at a time, to the verdicts still undecided (study.max_repeats): they rest on {fewest} to \
         {most} seeds each (verdicts.csv, repeats). A verdict looked at more than once is more likely to be decided by a chance \
         fluctuation, so every verdict's interval here is a {:.1} % interval: the {:.0} % error split evenly over the looks \
         the manifest allows (Bonferroni), which keeps it whichever look a verdict stops at.",
        confidence * 100.0,
        100.0 - 100.0 * BootstrapConfig::default().confidence,
    ))
}

/// For an undecided verdict, what would decide it: ", about 12 seeds", or that seeds alone would not.
pub(crate) fn seeds_needed_note(v: &VerdictRow) -> String {
    match (v.verdict, v.seeds_needed) {
        (Verdict::Undecided, Some(n)) => format!(": about {n} seeds would decide"),
        (Verdict::Undecided, None) if v.change_sd.is_some() => {
            format!(": more than {MAX_SEEDS_NEEDED} seeds at this spread, or more test images")
        }
        _ => String::new(),
    }
}

/// The verdicts of the answer table counted by kind, the sentence the page opens with: "Of the 20
/// verdicts at generation 1, 3 amplify, 13 hold, 4 are undecided (16 decided)." `None` without verdicts.
pub(crate) fn verdict_count(verdicts: &[VerdictRow]) -> Option<String> {
    let last = verdicts.iter().map(|v| v.generation).max()?;
    let shown = answer_rows(verdicts);
    let count = |verdict: Verdict| shown.iter().filter(|v| v.verdict == verdict).count();
    // The verb agrees with the count: "1 amplifies", "3 amplify".
    let plural = |verdict: Verdict| match verdict {
        Verdict::Amplifies => "amplify",
        Verdict::Cancels => "cancel",
        Verdict::Grows => "grow",
        Verdict::Shrinks => "shrink",
        Verdict::Reverses => "reverse",
        Verdict::Holds => "hold",
        Verdict::Undecided => "are undecided",
        Verdict::Collapsed => "collapsed",
        Verdict::Unlearned => "are unlearned",
    };
    let parts: Vec<String> = Verdict::ALL
        .into_iter()
        .filter(|&v| count(v) > 0)
        .map(|v| match (count(v), v) {
            (1, Verdict::Undecided) => "1 is undecided".to_string(),
            (1, Verdict::Unlearned) => "1 is unlearned".to_string(),
            (1, v) => format!("1 {}", v.name()),
            (n, v) => format!("{n} {}", plural(v)),
        })
        .collect();
    let decided = shown.iter().filter(|v| v.verdict.decided()).count();
    Some(format!("Of the {} verdicts at generation {last}, {} ({decided} decided).", shown.len(), parts.join(", ")))
}

/// The architectures that do not learn the task (their exact-label ceiling does not beat the
/// labels, or misses a class): their verdicts, and those of networks that learned from them,
/// are withheld.
pub(crate) fn unlearned_models(verdicts: &[VerdictRow]) -> Vec<String> {
    let models: BTreeSet<&str> = verdicts.iter().filter(|v| v.learned == Some(false)).map(|v| v.model.as_str()).collect();
    models.into_iter().map(str::to_string).collect()
}

/// What a study of `seeds` seeds per configuration cannot say: with one, its intervals cover the
/// choice of test images but not how differently a network trains from another seed; with two,
/// Student's t makes them so wide that almost nothing is decided.
fn few_seeds(seeds: i64) -> Option<String> {
    match seeds {
        1 => Some(
            "Every configuration was trained with one seed, so the intervals cover the choice of test images only, not how \
             differently the same network trains from another seed (in the default study seeds differ by up to 0.2 in \
             recall): a verdict here may be one seed's accident. Set study.repeats to 3 or more before believing one."
                .to_string(),
        ),
        2 => Some(
            "Every configuration was trained with two seeds: over seeds the intervals are Student's t with one degree of \
             freedom, 12.7 standard errors wide, so almost no change can be decided. Set study.repeats to 3 or more (4 \
             gives 3.2)."
                .to_string(),
        ),
        _ => None,
    }
}

/// What a reader must know before believing a verdict: runs that collapsed, generation-0 models
/// that score below the labels they learned from (with their ceiling, which says whether the
/// labels or the training are to blame), and runs whose validation loss had not levelled off.
pub(crate) fn warnings(rows: &[ResultRow], summary: &[SummaryRow]) -> Vec<String> {
    let runs: Vec<&ResultRow> = rows.iter().filter(|r| r.is_model() && r.metric == Metric::Steps).collect();
    // One pass over the rows, not one per run and metric: a large study has tens of thousands.
    let mut by_run: HashMap<(&str, &Metric), f64> = HashMap::new();
    for r in rows.iter().filter(|r| r.is_model()) {
        by_run.entry((r.run.as_str(), &r.metric)).or_insert(r.value);
    }
    let value = |run: &ResultRow, metric: &Metric| by_run.get(&(run.run.as_str(), metric)).copied();
    let describe = |r: &ResultRow| {
        let teacher = if r.teacher.is_empty() { String::new() } else { format!(" from {}", r.teacher) };
        format!("{} ({}{teacher}, generation {}, seed {})", r.model, r.treatment, r.generation, r.repeat + 1)
    };
    let mut out: Vec<String> = few_seeds(runs.iter().map(|r| r.repeat).max().map_or(0, |r| r + 1)).into_iter().collect();
    let collapsed_ids = collapsed_runs(rows);
    let collapsed: Vec<&&ResultRow> = runs.iter().filter(|r| collapsed_ids.contains(r.run.as_str())).collect();
    if !collapsed.is_empty() {
        // A large study can have hundreds: past a screenful, counts say more than names.
        let which = if collapsed.len() <= 12 {
            collapsed.iter().map(|r| describe(r)).collect::<Vec<_>>().join(", ")
        } else {
            format!(
                "by architecture {}; by treatment {} (results.csv's `collapsed` names each run)",
                counted(collapsed.iter().map(|r| r.model.clone())),
                counted(collapsed.iter().map(|r| r.treatment.to_string()))
            )
        };
        out.push(format!(
            "{} of {} runs collapsed (a class of the truth never predicted, or one class everywhere) and are left out of \
             the verdicts and intervals: {which}.",
            collapsed.len(),
            runs.len(),
        ));
    }
    let mut below = Vec::new();
    for r in runs.iter().filter(|r| r.generation == 0 && r.treatment == Treatment::Labels) {
        let (Some(miou), Some(labels)) = (value(r, &Metric::Miou), value(r, &Metric::LabelsMiou)) else { continue };
        if miou < labels {
            let ceiling = summary_of(summary, 0, &Treatment::Ceiling, &r.model, "", &Metric::Miou)
                .map(|c| format!(", exact labels {:.3}", c[0]))
                .unwrap_or_default();
            below.push(format!("{} seed {}: {miou:.3} against labels {labels:.3}{ceiling}", r.model, r.repeat + 1));
        }
    }
    if !below.is_empty() {
        out.push(format!(
            "Generation-0 models below the mIoU of the labels they learned from (labels scored on the training images, \
             models on the test images): {}. Where the same architecture on exact labels scores far higher, the \
             networks learn the task and what they reproduce is the labels' systematic error; where it does not, they are under-trained.",
            below.join("; ")
        ));
    }
    let unsettled: Vec<String> = runs.iter().filter(|r| value(r, &Metric::Converged) == Some(0.0)).map(|r| describe(r)).collect();
    if !unsettled.is_empty() {
        out.push(format!(
            "{} of {} runs were still improving their validation loss at the end of their step budget (its best over the \
             last quarter of epochs {} % or more below the best before): longer training could move their numbers. {}",
            unsettled.len(),
            runs.len(),
            (echoseg_study::read::LEVELLED_OFF * 100.0).round(),
            if unsettled.len() <= 6 { format!("They are: {}.", unsettled.join(", ")) } else { String::new() }
        ));
    }
    out
}

/// `names` counted, most frequent first: `bnonly 40, pixel 12`.
fn counted(names: impl Iterator<Item = String>) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ")
}

/// The gap recovered by every teacher→student pair at generation 1 (later generations are in gap.csv).
pub(crate) fn gap_table(gap: &[GapRow]) -> Table {
    let header = [
        "strategy",
        "teacher → student",
        "teacher mIoU (a committee's best member)",
        "student mIoU",
        "student's ceiling",
        "gap recovered (PGR)",
    ];
    let rows = gap
        .iter()
        .filter(|g| g.generation == 1)
        .map(|g| {
            vec![
                cell(&g.treatment.to_string()),
                cell(&format!("{} → {}", g.teacher, g.model)),
                interval_cell(Some(g.teacher_miou), 3, false),
                interval_cell(Some(g.student_miou), 3, false),
                interval_cell(Some(g.ceiling_miou), 3, false),
                match g.pgr {
                    Some(p) => interval_cell(Some(p), 2, true),
                    None => cell("teacher at its ceiling"),
                },
            ]
        })
        .collect();
    Table { header: header.map(String::from).to_vec(), rows }
}

/// One plain sentence per architecture and bias that changed (and always for the boundary offset),
/// at the last generation.
pub(crate) fn verdict_sentences(verdicts: &[VerdictRow]) -> Vec<String> {
    let Some(last) = verdicts.iter().map(|v| v.generation).max() else { return Vec::new() };
    let mut keys: Vec<(Bias, &str)> = verdicts.iter().map(|v| (v.bias, v.model.as_str())).collect();
    // Alphabetical by the bias's table name, the order readers of verdicts.csv know.
    keys.sort_by_key(|(b, m)| (b.name(), *m));
    keys.dedup();
    let mut sentences = Vec::new();
    for (bias, model) in keys {
        let at_last: Vec<&VerdictRow> = verdicts.iter().filter(|v| v.bias == bias && v.model == model && v.generation == last).collect();
        if at_last.is_empty() || (bias != Bias::BoundaryOffset && at_last.iter().all(|v| v.verdict == Verdict::Holds)) {
            continue;
        }
        let signed = bias.signed();
        let parts: Vec<String> = at_last
            .iter()
            .map(|v| {
                // A ratio of sizes means something only when the bias had a practical size to begin with.
                let sized = v.minimum.is_some_and(|m| bias.size(v.before[0]) >= m);
                let factor = v.factor.filter(|_| sized).map(|f| format!(", ×{}", with_interval(f, 2, false))).unwrap_or_default();
                let before = with_interval(v.before, 2, signed);
                let against = if v.against.is_empty() || v.against == model {
                    format!("its own generation 0: {before}")
                } else {
                    format!("generation-0 {}: {before}", v.against)
                };
                format!("{} with {} (against {against}; {}{factor})", with_interval(v.after, 2, signed), v.treatment, v.verdict.name())
            })
            .collect();
        sentences.push(format!(
            "The {} of {model} after {last} generation{} of pseudo-labels: {}.",
            bias.display_name(),
            if last == 1 { "" } else { "s" },
            parts.join(", and ")
        ));
    }
    sentences
}

/// Per target, one sentence: how many configurations met it and the best one.
pub(crate) fn target_sentences(targets: &[TargetRow]) -> Vec<String> {
    let mut distinct: Vec<&Target> = Vec::new();
    for t in targets {
        if !distinct.contains(&&t.target) {
            distinct.push(&t.target);
        }
    }
    distinct
        .iter()
        .map(|target| {
            // The ceiling is a reference trained on exact labels, not a configuration a user can pick.
            let mine: Vec<&TargetRow> = targets.iter().filter(|t| t.target == **target && t.treatment != Treatment::Ceiling).collect();
            let count = |j: Judgement| mine.iter().filter(|t| t.judgement == j).count();
            // The best configuration is the one furthest on the target's good side.
            let lower_is_better = target.comparison.lower_is_better();
            let best = mine.iter().max_by(|a, b| {
                let (x, y) = if lower_is_better { (-a.value[0], -b.value[0]) } else { (a.value[0], b.value[0]) };
                x.total_cmp(&y)
            });
            let best = best
                .map(|t| {
                    let from = if t.teacher.is_empty() { String::new() } else { format!(" from {}", t.teacher) };
                    format!(
                        "; best: {} at generation {} ({}{from}) with {}",
                        t.model,
                        t.generation,
                        t.treatment,
                        with_interval(t.value, 3, false)
                    )
                })
                .unwrap_or_default();
            format!(
                "{}: met by {} of {} configurations, missed by {}, undecided for {} (the interval straddles the target){best}.",
                target.text,
                count(Judgement::Met),
                mine.len(),
                count(Judgement::Missed),
                count(Judgement::Undecided)
            )
        })
        .collect()
}

/// Every target judged at generation 0 and at the last generation.
pub(crate) fn targets_table(targets: &[TargetRow]) -> Table {
    let last = targets.iter().map(|t| t.generation).max().unwrap_or(0);
    let header = ["target", "model", "generation", "strategy", "teacher", "value", "judgement"].iter().map(|s| s.to_string()).collect();
    let rows = targets
        .iter()
        .filter(|t| t.generation == 0 || t.generation == last)
        .map(|t| {
            vec![
                cell(&t.target.text),
                cell(&t.model),
                cell(&t.generation.to_string()),
                cell(&t.treatment.to_string()),
                cell(&t.teacher),
                interval_cell(Some(t.value), 3, false),
                format!("<td class=\"judgement {}\">{}</td>", escape(t.judgement.name()), escape(t.judgement.name())),
            ]
        })
        .collect();
    Table { header, rows }
}

/// One sentence per pre-trained model: what pre-training did at generation 0 to mIoU and to the
/// biases it changed, then what BYOL itself did (its loss and the spread of the embeddings).
pub(crate) fn pretraining_sentences(pretraining: &[PretrainingRow], rows: &[ResultRow]) -> Vec<String> {
    let mut models: Vec<(&str, &str)> = pretraining.iter().map(|p| (p.model.as_str(), p.pretrained.as_str())).collect();
    models.sort();
    models.dedup();
    models
        .into_iter()
        .map(|(model, pretrained)| {
            let at0: Vec<&PretrainingRow> =
                pretraining.iter().filter(|p| p.pretrained == pretrained && p.generation == 0 && p.treatment == Treatment::Labels).collect();
            let mut parts = Vec::new();
            if let Some(m) = at0.iter().find(|p| p.metric == Metric::Miou) {
                parts.push(format!(
                    "mIoU {:.3} → {:.3} ({}, {})",
                    m.without[0],
                    m.with[0],
                    with_interval(m.change, 3, true),
                    m.verdict.name()
                ));
            }
            let changed: Vec<String> = at0
                .iter()
                .filter(|p| p.metric != Metric::Miou && p.verdict != PretrainingVerdict::Holds)
                .map(|p| format!("{} {} ({:.2} → {:.2})", p.metric.name().replace('_', " "), p.verdict.name(), p.without[0], p.with[0]))
                .collect();
            parts.push(if changed.is_empty() { "no bias changed beyond its interval".into() } else { changed.join(", ") });
            let mean = |metric: Metric| metric_of(rows, |r| r.is_model() && r.model == pretrained && r.generation == 0, &metric);
            let byol = match (
                mean(Metric::ByolLossFirst),
                mean(Metric::ByolLossLast),
                mean(Metric::ByolEmbeddingStdInitial),
                mean(Metric::ByolEmbeddingStdLast),
            ) {
                (Some(a), Some(b), Some(c), Some(d)) => format!(
                    " BYOL's loss fell from {a:.2} to {b:.2} (first to last epoch, mean over seeds; 2 = unrelated, 0 = aligned) \
                     while the per-channel spread of the unit embeddings went from {c:.3} to {d:.3} (0 would be a collapsed representation)."
                ),
                _ => String::new(),
            };
            format!("{pretrained} against {model} at generation 0: {}.{byol}", parts.join("; "))
        })
        .collect()
}

/// The pre-training comparisons at generation 0 and the last generation.
pub(crate) fn pretraining_table(pretraining: &[PretrainingRow]) -> Table {
    let last = pretraining.iter().map(|p| p.generation).max().unwrap_or(0);
    let header =
        ["model", "generation", "strategy", "metric", "without", "with", "change", "verdict"].iter().map(|s| s.to_string()).collect();
    let rows = pretraining
        .iter()
        .filter(|p| p.generation == 0 || p.generation == last)
        .map(|p| {
            let signed = p.metric.signed();
            vec![
                cell(&format!("{} vs {}", p.pretrained, p.model)),
                cell(&p.generation.to_string()),
                cell(&p.treatment.to_string()),
                cell(&p.metric.name()),
                interval_cell(Some(p.without), 3, signed),
                interval_cell(Some(p.with), 3, signed),
                interval_cell(Some(p.change), 3, true),
                format!("<td class=\"verdict {}\">{}</td>", escape(p.verdict.name()), escape(p.verdict.name())),
            ]
        })
        .collect();
    Table { header, rows }
}

/// Per strategy (with its selection) and generation: what the selection kept, how right the kept
/// pseudo-labels were, and the chain models' scores and biases (means over architectures and seeds).
pub(crate) fn selection_table(rows: &[ResultRow]) -> Option<Table> {
    let mut keys: Vec<(i64, Treatment)> =
        rows.iter().filter(|r| r.is_model() && r.metric == Metric::KeptFraction).map(|r| (r.generation, r.treatment.clone())).collect();
    sort_by_name(&mut keys);
    if keys.is_empty() {
        return None;
    }
    let mut header: Vec<String> = ["strategy", "generation", "kept share", "pseudo-label accuracy before → after selection", "mIoU"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(SELECTION_BIASES.iter().map(|b| b.display_name()));
    let table_rows = keys
        .iter()
        .map(|(g, s)| {
            let of = |metric: &Metric| metric_of(rows, |r| r.is_model() && r.chain && r.generation == *g && &r.treatment == s, metric);
            let accuracy = match (of(&Metric::PseudoAccuracyBefore), of(&Metric::PseudoAccuracyAfter)) {
                (Some(a), Some(b)) => cell(&format!("{a:.3} → {b:.3}")),
                _ => cell("no truth for the pool"),
            };
            let mut cells = vec![
                cell(&s.to_string()),
                cell(&g.to_string()),
                number(of(&Metric::KeptFraction), 3, false),
                accuracy,
                number(of(&Metric::Miou), 3, false),
            ];
            cells.extend(SELECTION_BIASES.iter().map(|&b| number(of(&b.into()), b.decimals(), b.signed())));
            cells
        })
        .collect();
    Some(Table { header, rows: table_rows })
}

/// Power drawn by one busy CPU core, package share included: a round figure for current server
/// and laptop cores (about 5 to 15 W), not a measurement of this machine.
const WATTS_PER_BUSY_CORE: f64 = 10.0;
/// Carbon intensity of electricity: about the world average of recent years.
const GRAMS_CO2E_PER_KWH: f64 = 400.0;

/// Energy in Wh and emissions in g CO2e of `cpu_seconds` of busy CPU time.
fn energy_estimate(cpu_seconds: f64) -> (f64, f64) {
    let watt_hours = cpu_seconds * WATTS_PER_BUSY_CORE / 3600.0;
    (watt_hours, watt_hours / 1000.0 * GRAMS_CO2E_PER_KWH)
}

/// What ran where, and for how long.
pub(crate) fn provenance_table(p: &Provenance) -> Table {
    let row = |k: &str, v: String| vec![cell(k), cell(&v)];
    let mut rows = vec![
        row("echoseg", p.echoseg_version.clone()),
        row("git revision", p.git_revision.clone().unwrap_or_else(|| "not a git checkout".into())),
        row("burn", p.burn_version.clone()),
        row("device", p.device.clone()),
        row("threads", p.threads.to_string()),
        row("runs at once", format!("{} job(s) × {} thread(s)", p.jobs, p.threads_per_job)),
        row("command", p.command.clone()),
        row("architectures", p.architectures.join(", ")),
        row(
            "generations and seeds",
            format!("{} generation(s) after generation 0, {} seed(s), manifest seed {}", p.generations, p.repeats, p.seed),
        ),
        row("wall time", format!("{:.1} s", p.wall_seconds)),
        row("runs trained / reused", format!("{} / {}", p.runs_trained, p.runs_reused)),
    ];
    if let Some(peak) = p.peak_memory_mib {
        rows.push(row("peak memory", format!("{peak:.0} MiB")));
    }
    if let Some(cpu) = p.cpu_seconds {
        rows.push(row("CPU time", format!("{cpu:.1} s")));
        let (watt_hours, grams) = energy_estimate(cpu);
        rows.push(row(
            "energy and CO2 (estimate)",
            format!(
                "{watt_hours:.2} Wh, {grams:.1} g CO2e: CPU time × {WATTS_PER_BUSY_CORE} W per busy core, \
                 {GRAMS_CO2E_PER_KWH} g CO2e per kWh; not measured"
            ),
        ));
    }
    Table { header: vec!["what".into(), "value".into()], rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    use echoseg_study::read::Strategy;
    use echoseg_study::read::Subject;

    fn verdict_row(strategy: Strategy, verdict: Verdict, seeds_needed: Option<i64>) -> VerdictRow {
        VerdictRow {
            treatment: Treatment::every_label(strategy),
            model: "fcn".into(),
            against: "dilated".into(),
            generation: 1,
            bias: Bias::ThinRecall,
            before: [0.8, 0.7, 0.9],
            after: [0.8, 0.7, 0.9],
            change: [0.03, -0.05, 0.11],
            factor: None,
            minimum: Some(0.05),
            verdict,
            seeds_needed,
            change_sd: Some((0.05, 0.003)),
            learned: Some(true),
            repeats: 4,
            confidence: Some(0.95),
            collapsed: 0,
        }
    }

    #[test]
    fn the_page_opens_with_the_count_of_decided_verdicts_and_undecided_cells_say_what_would_decide() {
        let rows = vec![
            verdict_row(Strategy::Cross, Verdict::Amplifies, None),
            verdict_row(Strategy::Cross, Verdict::Holds, None),
            verdict_row(Strategy::SelfTraining, Verdict::Holds, None),
            verdict_row(Strategy::SelfTraining, Verdict::Undecided, Some(12)),
        ];
        assert_eq!(verdict_count(&rows).unwrap(), "Of the 4 verdicts at generation 1, 1 amplifies, 2 hold, 1 is undecided (3 decided).");
        assert_eq!(seeds_needed_note(&rows[3]), ": about 12 seeds would decide");
        assert_eq!(
            seeds_needed_note(&verdict_row(Strategy::Cross, Verdict::Undecided, None)),
            ": more than 100 seeds at this spread, or more test images"
        );
        assert_eq!(seeds_needed_note(&rows[1]), "");
        assert_eq!(added_seeds(&rows), None, "a study that looked once says nothing of added seeds");
        let added: Vec<VerdictRow> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| VerdictRow { confidence: Some(0.975), repeats: 2 + 2 * (i as i64 % 2), ..r.clone() })
            .collect();
        let sentence = added_seeds(&added).unwrap();
        assert!(
            sentence.contains("rest on 2 to 4 seeds") && sentence.contains("97.5 % interval") && sentence.contains("the 5 % error"),
            "{sentence}"
        );
    }

    fn row(run: &str, generation: i64, metric: Metric, value: f64) -> ResultRow {
        ResultRow {
            subject: Subject::Model,
            generation,
            treatment: if generation == 0 {
                Treatment::Labels
            } else {
                Treatment::every_label(echoseg_study::read::Strategy::SelfTraining)
            },
            model: "unet".into(),
            teacher: if generation == 0 { String::new() } else { "unet".into() },
            peer: String::new(),
            repeat: 0,
            metric,
            value,
            chain: true,
            run: run.into(),
        }
    }

    #[test]
    fn the_lead_leaves_collapsed_runs_out_of_its_means() {
        let offset = Metric::Bias(Bias::BoundaryOffset);
        let mut rows = vec![row("g0-a", 0, Metric::Miou, 0.8), row("g0-a", 0, offset.clone(), 0.1)];
        for (run, miou, collapsed) in [("g1-a", 0.7, 0.0), ("g1-b", 0.3, 1.0)] {
            rows.extend([row(run, 1, Metric::Miou, miou), row(run, 1, offset.clone(), 0.0), row(run, 1, Metric::Collapsed, collapsed)]);
        }
        let text = lead(&rows, &["unet".to_string()]);
        assert!(text.contains("(mIoU 0.700)"), "the collapsed run's 0.3 must not pull the mean to 0.5: {text}");
    }

    #[test]
    fn one_or_two_seeds_are_warned_of_and_three_are_not() {
        let runs = |seeds: i64| -> Vec<ResultRow> {
            (0..seeds).map(|s| ResultRow { repeat: s, ..row("g0-a", 0, Metric::Steps, 300.0) }).collect()
        };
        let first = |seeds: i64| warnings(&runs(seeds), &[]).into_iter().next().unwrap_or_default();
        assert!(first(1).contains("one seed"), "{}", first(1));
        assert!(first(2).contains("12.7 standard errors"), "{}", first(2));
        assert!(warnings(&runs(3), &[]).is_empty());
    }

    #[test]
    fn many_collapsed_runs_are_counted_not_listed() {
        let collapsed = |n: usize| -> Vec<ResultRow> {
            (0..n)
                .flat_map(|i| {
                    let run = format!("g1-{i}");
                    let repeat = (i % 3) as i64;
                    [
                        ResultRow { repeat, model: if i < 2 { "fcn".into() } else { "unet".into() }, ..row(&run, 1, Metric::Steps, 300.0) },
                        ResultRow { repeat, ..row(&run, 1, Metric::Collapsed, 1.0) },
                    ]
                })
                .collect()
        };
        let about = |n: usize| warnings(&collapsed(n), &[]).into_iter().find(|w| w.contains("collapsed")).unwrap();
        assert!(about(3).contains("fcn (self from unet, generation 1, seed 1)"), "a few are named: {}", about(3));
        let many = about(20);
        assert!(
            many.contains("20 of 20 runs collapsed") && many.contains("by architecture unet 18, fcn 2; by treatment self 20"),
            "{many}"
        );
        assert!(!many.contains("seed 1)"), "no run is named one by one: {many}");
    }
}
