//! What more seeds would buy: from a finished study's verdicts (each change's estimate and its
//! spread between seeds and over test images), how many of them a study with another number of
//! seeds is expected to decide, so that a pilot can size the study that answers.

use echoseg_agree::{BootstrapConfig, Spread, Verdict, chance_decided};

use crate::analysis::rows::{VerdictRow, answer_rows};

/// The verdicts a number of seeds is expected to decide.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resolution {
    /// Seeds per configuration.
    pub repeats: usize,
    /// The expected count of decided verdicts (a direction or an equivalence).
    pub expected_decided: f64,
    /// The verdicts projected: those of the answer table.
    pub verdicts: usize,
    /// Of them, those without a spread (one seed, or an older study): counted as undecided.
    pub without_spread: usize,
}

/// The expected resolution with `repeats` seeds of the study whose verdicts are `verdicts`,
/// assuming every change and its spread are as measured there (collapsed and unlearned verdicts
/// stay undecided whatever the seeds).
pub fn expected_resolution(verdicts: &[VerdictRow], repeats: usize) -> Resolution {
    let rows = answer_rows(verdicts);
    let confidence = BootstrapConfig::default().confidence;
    let mut without_spread = 0;
    let expected_decided = rows
        .iter()
        .map(|v| match (!matches!(v.verdict, Verdict::Collapsed | Verdict::Unlearned), v.change_sd, v.minimum) {
            (true, Some((seed_sd, image_sd)), Some(minimum)) => {
                let spread = Spread { seeds: seed_sd * seed_sd, images: image_sd * image_sd };
                chance_decided(v.change[0], &spread, minimum, repeats, confidence)
            }
            (true, _, _) => {
                without_spread += 1;
                0.0
            }
            (false, _, _) => 0.0,
        })
        .sum();
    Resolution { repeats, expected_decided, verdicts: rows.len(), without_spread }
}

#[cfg(test)]
mod tests {
    use echoseg_agree::Bias;

    use super::*;
    use crate::plan::strategy::{Strategy, Treatment};

    fn row(change: f64, seed_sd: f64, verdict: Verdict) -> VerdictRow {
        VerdictRow {
            treatment: Treatment::every_label(Strategy::Cross),
            model: "fcn".into(),
            against: "dilated".into(),
            generation: 1,
            bias: Bias::ThinRecall,
            before: [0.8; 3],
            after: [0.8; 3],
            change: [change, change - 0.1, change + 0.1],
            factor: None,
            minimum: Some(0.05),
            verdict,
            seeds_needed: None,
            change_sd: Some((seed_sd, 0.002)),
            learned: Some(true),
            repeats: 4,
            confidence: Some(0.95),
            collapsed: 0,
        }
    }

    #[test]
    fn more_seeds_are_expected_to_decide_more_and_collapsed_verdicts_never() {
        let verdicts = vec![row(0.0, 0.05, Verdict::Undecided), row(0.2, 0.05, Verdict::Amplifies), row(0.0, 0.05, Verdict::Collapsed)];
        let at = |n| expected_resolution(&verdicts, n);
        assert_eq!((at(4).verdicts, at(4).without_spread), (3, 0));
        // The large change is decided with 4 seeds almost surely; the null one needs many more.
        assert!(at(4).expected_decided > 0.95 && at(4).expected_decided < 1.2, "{:?}", at(4));
        assert!(at(32).expected_decided > 1.8 && at(32).expected_decided <= 2.0, "{:?}", at(32));
        let no_spread = VerdictRow { change_sd: None, ..row(0.0, 0.05, Verdict::Undecided) };
        assert_eq!(expected_resolution(&[no_spread], 8).without_spread, 1);
    }
}
