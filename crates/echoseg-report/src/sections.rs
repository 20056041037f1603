//! The report page, one function per section, in page order.

use echoseg_agree::{BOUNDARY_TOLERANCE, BootstrapConfig, CALIBRATION_BINS, DEFAULT_MAX_OFFSET, Metric};
use echoseg_study::read::OTHER_SOURCES;
use echoseg_study::read::Treatment;

use crate::html::{Page, escape};
use crate::mask_tables::{confusions_table, label_quality_table, masks_sentence, masks_table, worst_table};
use crate::score_tables::{estimates_table, scores_table, sources_table, surface_table};
use crate::summaries::{
    added_seeds, gap_table, has_ceiling, lead, metric_of, pretraining_sentences, pretraining_table, provenance_table, selection_table,
    target_sentences, targets_table, unlearned_models, verdict_count, verdict_sentences, verdict_table, warnings,
};
use crate::{Figures, Study};

/// Coverage of the study's intervals in percent, as the prose states it.
fn confidence_percent() -> f64 {
    BootstrapConfig::default().confidence * 100.0
}

/// How the study's intervals are made, in two sentences for the prose.
fn intervals_in_words() -> String {
    let config = BootstrapConfig::default();
    let t = |seeds: f64| echoseg_agree::bootstrap::student_t_quantile((1.0 + config.confidence) / 2.0, seeds - 1.0);
    format!(
        "Intervals are {} % intervals over test images ({} bootstrap resamples) and seeds (Student's t on the spread between \
         seeds: the half-width is {:.1}× the standard error with 2 seeds, {:.1}× with 4), so a direction that only two seeds \
         share is not taken for certain.",
        confidence_percent(),
        config.resamples,
        t(2.0),
        t(4.0)
    )
}

/// The whole page: what truth can tell first (or, without truth, what agreement can estimate),
/// then agreement, selection, calibration, training, sources, setup and definitions.
pub(crate) fn page(study: &Study, figures: &Figures) -> Page {
    let mut page = Page::new(&format!("echoseg report: {}", study.name));
    // The fingerprint figure exists exactly when the study has truth.
    if let Some(fingerprint) = &figures.fingerprint {
        let unlearned = unlearned_models(&study.verdicts);
        if !unlearned.is_empty() {
            let all = study.models.iter().all(|m| unlearned.contains(m) || !study.verdicts.iter().any(|v| &v.model == m));
            let text = if all {
                "These networks do not learn this task from these images: trained on exact labels, none beats the labels it \
                 could have copied (or one misses a class of the truth). No verdict on label biases is given."
                    .to_string()
            } else {
                format!(
                    "{} {} not learn this task from these images (trained on exact labels, {} not beat the labels or misses a \
                     class of the truth): {} verdicts, and those of networks that learned from {}, are withheld.",
                    unlearned.join(" and "),
                    if unlearned.len() == 1 { "does" } else { "do" },
                    if unlearned.len() == 1 { "it does" } else { "they do" },
                    if unlearned.len() == 1 { "its" } else { "their" },
                    if unlearned.len() == 1 { "it" } else { "them" }
                )
            };
            page.raw(&format!("<p class=\"unlearned-box\">{}</p>", escape(&text)));
        }
        let count = verdict_count(&study.verdicts).map(|c| format!("{c} ")).unwrap_or_default();
        page.raw(&format!("<p class=\"lead\">{}{}</p>", escape(&count), escape(&lead(&study.rows, &study.models))));
        if let Some(trend) = crate::trends::trend_lead(&study.trends) {
            page.raw(&format!("<p class=\"lead\">{}</p>", escape(&trend)));
        }
        verdict(&mut page, study);
        trends(&mut page, study, figures);
        targets(&mut page, study);
        pretraining(&mut page, study);
        samples_with_truth(&mut page, figures);
        fingerprints(&mut page, study, figures, fingerprint);
    } else {
        page.raw(
            "<p class=\"lead\">The test images of this study have no ground truth, so everything measured against \
             truth is left out: the verdict on biases, targets, fingerprints, scores and calibration. What follows \
             judges the models from their outputs alone.</p>",
        );
        estimates(&mut page, study);
        samples_without_truth(&mut page, figures);
    }
    agreement(&mut page, figures);
    without_truth(&mut page, study, figures);
    selection(&mut page, study, figures);
    calibration(&mut page, study, figures);
    training(&mut page, figures);
    sources(&mut page, study);
    surfaces(&mut page, study);
    masks(&mut page, study);
    label_issues(&mut page, study, figures);
    setup(&mut page, study);
    definitions(&mut page);
    page
}

fn verdict(page: &mut Page, study: &Study) {
    page.heading("verdict", "The answer: which biases amplify, which cancel");
    if study.verdicts.is_empty() {
        page.paragraph("The study has no pseudo-label generation (or no truth), so there is no change of bias to judge.");
    } else {
        // Selections multiply the rows (full.toml: 17 treatments per bias); the answer shows the
        // strategies with every pseudo-label kept and folds the selections below the warnings.
        page.raw(&verdict_table(&study.verdicts, &study.summary, &study.models, Treatment::keeps_every_label).html());
        let ceiling = if has_ceiling(&study.summary) {
            "; before the bar, the same architecture and seeds trained on exact labels (the ceiling: what the architecture \
             does anyway, whatever the labels)"
        } else {
            " (this study has no exact-label ceiling: a folder study trains one only when its truth masks cover every image \
             a source teaches)"
        };
        page.paragraph(&format!(
            "Each bias of each architecture after pseudo-labelling, against the generation-0 network(s) of the same seed whose \
             outputs its pseudo-labels come from, on the same test images: under self its own generation 0, under cross its \
             teacher (named in the cell), under ensemble and consensus the committee's members pooled. A student inherits its \
             teacher's seed quirks, so comparing the two keeps them on both sides of the change and measures what learning \
             from pseudo-labels did{ceiling}. {} A bias amplifies (grows, for the signed boundary offset) or cancels (shrinks) only when \
             the interval of the change in its size excludes zero and the change is at least the practical minimum of the \
             manifest's [verdict] table (defaults: 0.25 px for the boundary offset, 0.05 for recalls and F1); the offset \
             reverses when it has a practical size of one sign before and of the other after. It holds only when the whole \
             interval of the change lies inside ± that minimum (an equivalence, as in TOST): \"no change\" is a claim that needs \
             its interval too. Otherwise it is undecided (hatched), and the cell says how many seeds would decide it if the \
             change and its spread stay as seen (`echoseg plan --from` projects this for any number of seeds). An architecture \
             whose exact-label ceiling does not beat the labels' mIoU (unless it reaches {learned:.1}) or gives a class of the \
             truth an IoU below {class_iou:.1} has not learned the task: its verdicts are withheld (unlearned). Bias size: \
             |offset| for the boundary offset, 1 − F1 for the boundary F1, 1 − recall for recalls, the rate for false positives.",
            intervals_in_words(),
            learned = echoseg_study::read::LEARNED_MIOU,
            class_iou = echoseg_study::read::LEARNED_CLASS_IOU,
        ));
        if let Some(added) = added_seeds(&study.verdicts) {
            page.paragraph(&added);
        }
    }
    let warnings = warnings(&study.rows, &study.summary);
    if !warnings.is_empty() {
        let items: String = warnings.iter().map(|w| format!("<li>{}</li>", escape(w))).collect();
        page.raw(&format!("<div class=\"warnings\"><strong>Before believing these numbers</strong><ul>{items}</ul></div>"));
    }
    if study.verdicts.iter().any(|v| !v.treatment.keeps_every_label()) {
        let selected = verdict_table(&study.verdicts, &study.summary, &study.models, |t| !t.keeps_every_label());
        page.raw(&format!(
            "<details><summary>The same with selections of pseudo-labels ({} rows)</summary>{}</details>",
            selected.rows.len(),
            selected.html()
        ));
    }
    gap(page, study);
    let sentences = verdict_sentences(&study.verdicts);
    if !sentences.is_empty() {
        let text: String = sentences.iter().map(|s| format!("<p>{}</p>", escape(s))).collect();
        page.raw(&format!("<details><summary>The verdicts in words, per architecture and bias</summary>{text}</details>"));
    }
}

fn trends(page: &mut Page, study: &Study, figures: &Figures) {
    if study.trends.is_empty() {
        return;
    }
    page.heading("trends", "Over generations: which biases drift, which stay bounded");
    page.paragraph(&format!(
        "For every strategy, pseudo-label mode and architecture, the bias of one architecture's chain at every generation \
         (generation 0 learned the labels; generation 1, which has only generation 0's pseudo-labels to learn, is shared \
         by both modes). With replace, each generation learns its teachers' pseudo-labels only; with accumulate, also \
         those of every earlier generation of its lineage, all together carrying the manifest's mix. The slope is the \
         least-squares slope of the bias's size per generation, within each seed, averaged over seeds; the drift is the \
         slope times the generations. A bias drifts (recedes) when the drift's interval excludes zero and the drift \
         reaches the verdicts' practical minimum; it stays bounded when the drift's whole interval lies inside ± that \
         minimum; otherwise it is undecided. {} trends.csv has every row.",
        intervals_in_words()
    ));
    page.raw(&crate::trends::trend_table(&study.trends).html());
    for (bias, figure) in &figures.trends {
        let name = bias.display_name();
        page.figure(
            figure,
            &format!("{name} over generations"),
            &format!(
                "{name} at every generation, one panel per architecture and strategy: replace solid, accumulate dashed. The \
                 bands are each generation's interval over seeds and test images; the slope's interval in the table is \
                 narrower, since it compares the generations within each seed and image."
            ),
        );
    }
}

fn gap(page: &mut Page, study: &Study) {
    if study.gap.is_empty() {
        return;
    }
    page.heading("gap", "Gap recovered: does a student outgrow its teacher?");
    page.paragraph(&format!(
        "For every teacher → student pair, PGR = (student − teacher) / (ceiling − teacher) in mIoU on the test images, \
         the ceiling being the student's architecture trained on exact labels of the same images with the same seeds: \
         0 = the student only copies its teacher, 1 = it recovers everything exact labels would have given, below 0 = \
         worse than its teacher. A committee's student (ensemble, consensus) is measured against the committee's best \
         member in each seed, so its PGR is above 0 only when it beats every one of its teachers. Burns et al. (2023) report \
         0.42–0.58 for weak-to-strong generalisation in vision. {} A teacher within 0.02 of the ceiling leaves \
         no gap to recover. gap.csv has every generation.",
        intervals_in_words()
    ));
    page.raw(&gap_table(&study.gap).html());
}

fn targets(page: &mut Page, study: &Study) {
    if study.targets.is_empty() {
        return;
    }
    page.heading("targets", "Targets");
    for sentence in target_sentences(&study.targets) {
        page.paragraph(&sentence);
    }
    page.paragraph(&format!(
        "A target is met when the whole {} % interval of the configuration's value meets it, missed when none of it \
         does, and undecided otherwise. The table shows generation 0 and the last generation; targets.csv has every \
         configuration.",
        confidence_percent()
    ));
    page.raw(&targets_table(&study.targets).html());
}

fn pretraining(page: &mut Page, study: &Study) {
    if study.pretraining.is_empty() {
        return;
    }
    page.heading("pretraining", "Pre-training");
    for sentence in pretraining_sentences(&study.pretraining, &study.rows) {
        page.paragraph(&sentence);
    }
    page.paragraph(&format!(
        "Each pre-trained model against the same architecture trained from random weights, with the same data, \
         seeds and place in the study (generation, strategy), paired image by image on the test images. Intervals \
         are {} % bootstrap intervals over test images and seeds. For mIoU the change is with − without; for a \
         bias it is the change in its size (as in the verdict), so amplifies means pre-training made the bias \
         larger. The table shows generation 0 and the last generation; pretraining.csv has every generation.",
        confidence_percent()
    ));
    page.raw(&pretraining_table(&study.pretraining).html());
}

fn samples_with_truth(page: &mut Page, figures: &Figures) {
    let Some(src) = &figures.samples else { return };
    page.heading("samples", "Sample test images");
    page.figure(
        src,
        "test images with their truth, each source's labels, each model's prediction and the models' disagreement",
        "Each row is a test image. After the image: the exact truth, then what each label source draws on it (its \
         bias is visible at the object edges and on faint objects), then each architecture's prediction at \
         generation 0 and at the last generation (first seed), and in red where those models disagree (darker = \
         more models outvoted). Disagreement marks only where models differ; where they share a bias it stays white.",
    );
}

fn fingerprints(page: &mut Page, study: &Study, figures: &Figures, fingerprint: &str) {
    let percent = confidence_percent();
    page.heading("fingerprints", "Bias fingerprints across generations");
    page.figure(
        fingerprint,
        "boundary offset and mIoU per model and strategy across generations",
        &format!(
            "Left: the signed boundary offset of each model's test predictions against truth (+ = objects drawn too large), \
             generation 0 trained on the mixed source labels, later generations on pseudo-labels; dashed grey lines are the \
             sources' own offsets. Shaded bands: {percent} % intervals over test images and seeds. A line moving away from zero \
             means the bias amplifies; towards zero, it cancels. Right: mIoU against truth."
        ),
    );
    if let Some(src) = &figures.subgroups {
        page.figure(
            src,
            "subgroup scores per model and strategy across generations",
            &format!(
                "Recall on thin structures, small objects and low-contrast objects, and the false-positive rate on cast \
                 shadows, of each model's test predictions against truth, with {percent} % interval bands; dashed grey lines are \
                 the sources' own values. These are where label biases hide: a source that skips faint objects teaches \
                 models to skip them, and pseudo-labelling can make it worse."
            ),
        );
    }
    if let Some(src) = &figures.transfer {
        page.figure(
            src,
            "teacher to student bias transfer at generation 1",
            "Rows: teacher; columns: student. Each cell: the student's bias on the test images after one generation of \
             learning from the teacher's pseudo-labels, every pool pixel kept; the diagonal is self-training, the rest cross-training. \
             A column that changes along its rows says the student inherits the teacher's bias; a row that looks alike \
             across columns says the teacher imposes it whatever the student's architecture.",
        );
    }
    page.raw(&scores_table(&study.rows, &study.summary, &study.models, &study.class_metrics).html());
}

fn estimates(page: &mut Page, study: &Study) {
    page.heading("estimates", "Estimates without truth");
    page.paragraph(
        "Per model: its mean disagreement with the other architectures of its generation and strategy (the share of \
         pixels labelled differently; it estimates the error rate only where models err independently, and \
         underestimates errors they share), and STAPLE's estimate of its sensitivity per class from all the models' \
         outputs. Means over seeds.",
    );
    page.raw(&estimates_table(&study.rows, &study.models).html());
}

fn samples_without_truth(page: &mut Page, figures: &Figures) {
    let Some(src) = &figures.samples else { return };
    page.figure(
        src,
        "test images with each model's prediction and the models' disagreement",
        "Each row is a test image, what each label source drew on it (where it has a mask there), then each \
         architecture's prediction at generation 0 and at the last generation (first seed), and in red where those \
         models disagree. Without truth, the truth column is empty.",
    );
}

fn agreement(page: &mut Page, figures: &Figures) {
    page.heading("agreement", "Agreement between architectures");
    page.figure(
        &figures.kappa,
        "Cohen's kappa between each pair of models per generation and strategy",
        "Cohen's kappa between the test predictions of each pair of architectures, per generation and strategy \
         (1 = identical, 0 = chance-level agreement). Rising kappa across generations means the models converge; \
         whether they converge on the truth or on a shared bias, the fingerprints above tell.",
    );
    if let Some(src) = &figures.error_phi {
        page.figure(
            src,
            "correlation of the models' per-pixel errors per generation and strategy",
            "Phi correlation between two models' per-pixel error indicators on the test images (1 = they err on exactly \
             the same pixels, 0 = independent errors). High values mean a committee of these models cannot outvote \
             their mistakes, and disagreement underestimates their error.",
        );
    }
}

fn without_truth(page: &mut Page, study: &Study, figures: &Figures) {
    let Some(src) = &figures.without_truth else { return };
    page.heading("without-truth", "What agreement tells without truth");
    page.figure(
        src,
        "disagreement vs true error per pair, and STAPLE-estimated vs true sensitivity per model and class",
        "Left: for every pair of models of a generation and strategy, how often they disagree against their mean \
         error rate measured with truth. On the dashed y = x line, disagreement alone would estimate the error \
         (the generalisation-disagreement equality); points below it are pairs that share their errors, which \
         agreement cannot see. Right: STAPLE's estimate of each model's per-class sensitivity from the models' \
         outputs alone, against the sensitivity measured with truth: how far a study without truth can trust it.",
    );
    if let Some(fleiss) = metric_of(&study.rows, |r| r.is_committee(), &Metric::FleissKappa) {
        page.paragraph(&format!(
            "Fleiss' kappa among all architectures, averaged over generations, strategies and seeds: {fleiss:.3}; \
             pairwise error correlations (phi) are in results.csv (metric {}).",
            Metric::ErrorPhi
        ));
    }
}

fn selection(page: &mut Page, study: &Study, figures: &Figures) {
    let Some(table) = selection_table(&study.rows) else { return };
    page.heading("selection", "Selection of pseudo-labels");
    page.paragraph(
        "Which of the teachers' pool labels each student learned from. Strategies are named with their selection \
         (self + confidence0.9: self-training on the pixels whose teacher probability is at least 0.9); rejected \
         pixels carry no loss. Kept share: pool pixels with a label after selection (an ensemble's split votes are \
         already missing before it). Accuracy: share of those labels that match the truth. Scores and biases are \
         means over architectures and seeds of the chain models on the test images.",
    );
    page.raw(&table.html());
    if let Some(src) = &figures.selection {
        page.figure(
            src,
            "each bias against the share of pseudo-labels kept, per run, coloured by selection",
            "Each point is one pseudo-label run: the share of pool pixels its selection kept (x) and its bias on the \
             test images (y). A selection that keeps fewer pixels but moves a bias towards its ideal (offset 0, \
             recall 1) is filtering out the pixels that carried the bias; one that moves it away is keeping exactly \
             those (a confident teacher is often confidently biased).",
        );
    }
}

fn calibration(page: &mut Page, study: &Study, figures: &Figures) {
    let Some(src) = figures.reliability.as_ref().filter(|_| study.has_truth) else { return };
    page.heading("calibration", "Calibration");
    page.figure(
        src,
        "reliability diagrams: accuracy against confidence per model",
        &format!(
            "Test pixels binned by the model's top-class probability ({CALIBRATION_BINS} bins); each point is a bin's mean probability \
             against how often the top class is right there, pooled over seeds. On the dashed diagonal a model is \
             calibrated; below it, over-confident. Pseudo-labelling on a model's own confident outputs tends to push \
             points below the diagonal. The ECE column of the scores table summarises each curve."
        ),
    );
}

fn training(page: &mut Page, figures: &Figures) {
    page.heading("training", "Training");
    page.figure(
        &figures.loss,
        "training and validation loss per epoch",
        "Training loss (solid) and validation loss (dashed) per epoch, each the median over seeds; the band holds \
         the middle half of the seeds' validation losses (25th to 75th percentile). Validation uses held-out images labelled by the same sources, never the test set.",
    );
}

fn sources(page: &mut Page, study: &Study) {
    page.heading("sources", "Label sources");
    let on_test = study.splits.as_ref().is_some_and(|s| !s.source_test.is_empty());
    page.paragraph(if on_test {
        "Each source's masks on the test images scored against the exact truth (those masks are never trained on): \
         the biases the models inherit."
    } else {
        "Each source's labels scored against the exact truth on the training images it labelled: the biases the models inherit."
    });
    if let Some(layout) = study.splits.as_ref().map(|s| &s.layout).filter(|l| !l.is_empty()) {
        page.paragraph(layout);
    }
    page.raw(&sources_table(&study.rows, &study.class_metrics).html());
}

fn surfaces(page: &mut Page, study: &Study) {
    let Some(table) = surface_table(&study.rows) else { return };
    page.heading("surfaces", "Surface distances");
    page.paragraph(&format!(
        "Per class, means over the scored images (and over seeds for models): HD95, the 95th-percentile distance between the \
         two borders; ASSD, the mean distance of both borders' pixels to the other border (both in px, medpy's definitions); \
         surface Dice, the share of both borders within {} px of the other; clDice, the centreline Dice of thin structures \
         (Zhang–Suen skeletons). An image where only one of the two masks has the class (an object missed, or drawn where \
         there is none) counts at the worst values, distances the image's diagonal and both Dice 0, and an image where \
         neither has it at the best (MetricsReloaded's rule): left out, such images would make a model that stops finding \
         hard objects look closer to the truth. The last columns count them. Sources are scored where the sources table \
         scores them, models on the test images.",
        echoseg_agree::SURFACE_TOLERANCE
    ));
    page.raw(&table.html());
}

fn masks(page: &mut Page, study: &Study) {
    let Some(table) = masks_table(&study.masks) else { return };
    page.heading("masks", "Masks better than each source?");
    page.paragraph(
        "Each source's masks and each configuration's committee mask on the test images, against the exact truth. A \
         configuration's committee mask is the per-pixel plurality vote of all its runs (every architecture and seed; ties \
         to the lower class): what `echoseg export NAME` writes for every image of the study, with the share of runs that \
         voted for it as an 8-bit confidence map. A committee above every source in mIoU, with biases nearer 0 (offset) or \
         1 (recalls) than each source's, is the answer yes.",
    );
    if let Some(sentence) = masks_sentence(&study.masks) {
        page.paragraph(&sentence);
    }
    page.raw(&table.html());
}

fn label_issues(page: &mut Page, study: &Study, figures: &Figures) {
    if study.label_quality.is_empty() {
        return;
    }
    page.heading("label-issues", "Which given masks look wrong");
    if let Some(worst) = &study.worst_labels {
        page.paragraph(&format!("{}.", worst.method));
    }
    page.paragraph(
        "Every labelled image of every source is in label_issues.csv, ranked per source and scorer (rank 1 = most suspect). \
         Out-of-sample networks learn what the other images' labels share: an error every image of a source makes the same \
         way (a source that draws every object 1 px too large) is learned too and cannot stand out, so these scores find a \
         source's idiosyncratic errors (missed or extra objects), not its systematic bias, which the fingerprints measure where \
         there is truth.",
    );
    if study.label_quality.iter().any(|q| q.scorer == OTHER_SOURCES) {
        page.paragraph(
            "The other-sources scorer is trained without the judged source's labels, so a bias that source draws on every \
             image is not in what it learned and can stand out; but the other sources' own biases are, and where they differ \
             from the judged source it takes them for the judged source's errors. Compare its precision with the folds' average.",
        );
    }
    page.raw(&label_quality_table(&study.label_quality).html());
    if let Some(src) = &figures.label_issues {
        page.figure(
            src,
            "the worst-scored labelled images of each source: image, given mask, the networks' most probable class, flagged pixels, truth",
            "Per source, its worst-scored images first. After the image: the mask the source gave, the class the cross-fitted \
             networks' average finds most probable, the flagged pixels in red and, where known, the exact truth.",
        );
    }
    if let Some(worst) = &study.worst_labels {
        page.raw(&worst_table(worst).html());
    }
    if let Some(table) = confusions_table(&study.label_confusions) {
        page.paragraph("Common confusions: pixels a source gave one class where the networks' average finds another most probable.");
        page.raw(&table.html());
    }
}

fn setup(page: &mut Page, study: &Study) {
    page.heading("setup", "Setup and provenance");
    if let Some(p) = &study.provenance {
        page.raw(&provenance_table(p).html());
    }
    let pretraining_file = if study.pretraining.is_empty() {
        ""
    } else {
        "<a href=\"pretraining.csv\">pretraining.csv</a> (pre-trained models against their architecture), "
    };
    page.raw(&format!(
        "<p>Files: <a href=\"results.csv\">results.csv</a> and <a href=\"results.parquet\">results.parquet</a> \
         (one row per model × generation × strategy × repeat × metric), <a href=\"summary.csv\">summary.csv</a> \
         (each configuration's metrics with intervals), <a href=\"verdicts.csv\">verdicts.csv</a> (bias changes and verdicts), \
         <a href=\"targets.csv\">targets.csv</a> (targets judged per configuration), {pretraining_file}\
         <a href=\"history.csv\">history.csv</a> \
         (loss per epoch), <a href=\"manifest.toml\">manifest.toml</a> (the manifest that produced them), \
         <a href=\"splits.json\">splits.json</a> (image ids per split).</p>"
    ));
}

fn definitions(page: &mut Page) {
    let percent = confidence_percent();
    let resamples = BootstrapConfig::default().resamples;
    page.heading("definitions", "Definitions");
    page.raw(&format!(
        "<ul><li>IoU<sub>c</sub> = TP<sub>c</sub> / (TP<sub>c</sub> + FP<sub>c</sub> + FN<sub>c</sub>), pooled over the test images; \
         mIoU is the mean over classes present.</li>\
         <li>Boundary offset: for every pixel on a predicted region's inner boundary, the distance to the nearest \
         true boundary pixel of the same class, + outside the true region and − inside; pixels more than {DEFAULT_MAX_OFFSET} px away \
         (missed or invented objects) are left out. A mask dilated by k px scores about +k.</li>\
         <li>Boundary F1 ({BOUNDARY_TOLERANCE} px): 2PR / (P + R), P the share of predicted boundary pixels within {BOUNDARY_TOLERANCE} px of a true boundary \
         of the same class, R the share of true boundary pixels within {BOUNDARY_TOLERANCE} px of a predicted one.</li>\
         <li>ECE: expected calibration error, Σ<sub>b</sub> (n<sub>b</sub> / N) |accuracy<sub>b</sub> − confidence<sub>b</sub>| \
         over {CALIBRATION_BINS} equal-width bins of each pixel's top-class probability.</li>\
         <li>Intervals: {percent} %; the test images are bootstrapped ({resamples} resamples, the same draw in every seed, pairing \
         the two generations image by image for verdicts) and the seeds enter through Student's t: estimate ± t(k − 1)·√(s²/k + v), \
         s² the variance over the k seeds and v the bootstrap variance of their mean; one seed: the bootstrap's percentile interval.</li>\
         <li>Committee mask of a configuration: the per-pixel plurality vote of all its runs (every architecture and seed; ties to the \
         lower class); its confidence is the share of runs voting for it.</li>\
         <li>Label issues: a pixel's label quality is the probability networks that did not train on its image give its given label; \
         an image's score is their softmin, Σ q<sub>i</sub>·softmax((1 − q)/T)<sub>i</sub>; AUROC is the concordance of scores with \
         the images' true error shares (over pairs whose shares differ, the share in which the more wrong image scores lower).</li>\
         <li>Pixel agreement: share of pixels two models label alike. Cohen's kappa: (p<sub>o</sub> − p<sub>e</sub>) / (1 − p<sub>e</sub>), \
         p<sub>e</sub> from the two models' label frequencies.</li>\
         <li>Angular hardness of a pool pixel: the angle between its embedding (the network's last features) and the mean \
         unit embedding of all pool pixels predicted as its class; a hardness selection keeps, per class, the share of \
         pixels with the smallest angle. Confidence: the teachers' mean top-class probability.</li>\
         <li>Mean teacher (strategy ema): a student trained on the labels plus the pool, the pool's targets being the \
         confident predictions of a teacher whose weights are the moving average of the student's.</li>\
         <li>BYOL pre-training (models named ARCHITECTURE+byol): before supervised training, the network learns on the \
         unlabelled pool alone that every pixel's embedding, through a projector and a predictor, predicts the moving-average \
         target network's projection of the same scene point in another random view; loss 2 − 2·cos. Embedding spread: \
         the mean over channels of the standard deviation, over pool pixels, of the unit-length embedding (0 = collapsed).</li></ul>"
    ));
}
