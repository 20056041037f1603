//! Verdicts on a bias between two generations, by rules a reader can check: a direction only
//! when the interval of the change excludes zero *and* the change is larger than a practical
//! minimum, and for a signed bias (the boundary offset) the sign is judged too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bootstrap::Interval;
use crate::metric::Bias;
#[cfg(doc)]
use crate::metric::Sense;

/// What happened to a bias between two generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The bias grew by more than its practical minimum, and the interval of the change excludes no change.
    Amplifies,
    /// The bias shrank by more than its practical minimum, and the interval of the change excludes no change.
    Cancels,
    /// A signed bias grew in size, keeping its sign (as [`Verdict::Amplifies`]).
    Grows,
    /// A signed bias shrank in size (as [`Verdict::Cancels`]).
    Shrinks,
    /// A signed bias of a practical size before is one of the opposite sign and a practical size after.
    Reverses,
    /// No change that excludes zero and exceeds the practical minimum.
    Holds,
    /// Most runs behind the comparison collapsed (stopped predicting a class), so there is no verdict.
    Collapsed,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 7] =
        [Verdict::Amplifies, Verdict::Cancels, Verdict::Grows, Verdict::Shrinks, Verdict::Reverses, Verdict::Holds, Verdict::Collapsed];

    /// The word used in tables and the report.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Amplifies => "amplifies",
            Verdict::Cancels => "cancels",
            Verdict::Grows => "grows",
            Verdict::Shrinks => "shrinks",
            Verdict::Reverses => "reverses",
            Verdict::Holds => "holds",
            Verdict::Collapsed => "collapsed",
        }
    }

    /// The verdict a table word stands for.
    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The direction of the change, if there is one: +1 the bias grew, −1 it shrank, 0 neither
    /// (holds, reverses or collapsed).
    pub fn direction(self) -> i8 {
        match self {
            Verdict::Amplifies | Verdict::Grows => 1,
            Verdict::Cancels | Verdict::Shrinks => -1,
            Verdict::Reverses | Verdict::Holds | Verdict::Collapsed => 0,
        }
    }

    /// The verdict on a quantity from its value `before` and `after` and the change of its size
    /// (after − before, see [`Bias::size`]), with a practical `minimum` change; `signed` when
    /// the sign of the value is the direction of the bias ([`Sense::Signed`]).
    pub fn judge(signed: bool, before: &Interval, after: &Interval, change: &Interval, minimum: f64) -> Verdict {
        // +1 (−1) when the interval lies above (below) zero and its estimate is practically large.
        let side = |i: &Interval| {
            if i.low > 0.0 && i.estimate >= minimum {
                1
            } else if i.high < 0.0 && -i.estimate >= minimum {
                -1
            } else {
                0
            }
        };
        if signed && side(before) * side(after) == -1 {
            return Verdict::Reverses;
        }
        match (signed, side(change)) {
            (false, 1) => Verdict::Amplifies,
            (false, -1) => Verdict::Cancels,
            (true, 1) => Verdict::Grows,
            (true, -1) => Verdict::Shrinks,
            _ => Verdict::Holds,
        }
    }
}

/// The smallest change of each bias a verdict may call a direction: the `[verdict]` table of a
/// manifest, with [`VerdictRules::default_minimum`] for every bias it does not name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerdictRules {
    /// Practical minimum per bias, where it differs from the default.
    pub minimum: BTreeMap<Bias, f64>,
}

impl VerdictRules {
    /// The defaults and why: a quarter of the 1 px dilation that is the smallest systematic
    /// outline error a labeller makes; 5 points of a recall or F1, about what one missed thin
    /// structure in forty test images costs; 2 points of pixels flipped by the cue; 5 points of
    /// mIoU for the domain gap.
    pub fn default_minimum(bias: Bias) -> f64 {
        match bias {
            Bias::BoundaryOffset => 0.25,
            Bias::BoundaryF1 | Bias::ThinRecall | Bias::SmallObjectRecall | Bias::LowContrastRecall => 0.05,
            Bias::ShadowFpRate => 0.05,
            Bias::CueReliance => 0.02,
            Bias::DomainGap => 0.05,
        }
    }

    /// The practical minimum of `bias`.
    pub fn minimum(&self, bias: Bias) -> f64 {
        self.minimum.get(&bias).copied().unwrap_or_else(|| Self::default_minimum(bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(estimate: f64, half: f64) -> Interval {
        Interval { estimate, low: estimate - half, high: estimate + half }
    }

    #[test]
    fn a_tiny_change_whose_interval_excludes_zero_holds() {
        // Measured on a 40-epoch study: +1.70 px → +1.69 px under cross, change −0.012 [−0.025, −0.0004].
        let change = Interval { estimate: -0.012, low: -0.025, high: -0.0004 };
        assert_eq!(Verdict::judge(true, &at(1.70, 0.1), &at(1.69, 0.1), &change, 0.25), Verdict::Holds);
        // Thin recall 0.01 → 0.00: one point of recall is no amplification.
        let change = Interval { estimate: 0.01, low: 0.004, high: 0.02 };
        assert_eq!(Verdict::judge(false, &at(0.01, 0.005), &at(0.0, 0.0), &change, 0.05), Verdict::Holds);
    }

    #[test]
    fn a_signed_bias_grows_shrinks_or_reverses() {
        let (plus_one, plus_two) = (at(1.0, 0.1), at(2.0, 0.1));
        assert_eq!(Verdict::judge(true, &plus_one, &plus_two, &at(1.0, 0.2), 0.25), Verdict::Grows);
        assert_eq!(Verdict::judge(true, &plus_two, &plus_one, &at(-1.0, 0.2), 0.25), Verdict::Shrinks);
        // +1.2 px → −1.3 px: the size barely changed, the sign flipped.
        assert_eq!(Verdict::judge(true, &at(1.2, 0.1), &at(-1.3, 0.1), &at(0.1, 0.05), 0.25), Verdict::Reverses);
        // +0.04 px → −1.26 px: there was no bias to reverse; a new one grew.
        assert_eq!(Verdict::judge(true, &at(0.04, 0.05), &at(-1.26, 0.1), &at(1.22, 0.1), 0.25), Verdict::Grows);
    }

    #[test]
    fn unsigned_biases_amplify_or_cancel_and_names_round_trip() {
        assert_eq!(Verdict::judge(false, &at(0.9, 0.02), &at(0.5, 0.02), &at(0.4, 0.05), 0.05), Verdict::Amplifies);
        assert_eq!(Verdict::judge(false, &at(0.3, 0.02), &at(0.1, 0.02), &at(-0.2, 0.05), 0.05), Verdict::Cancels);
        for v in Verdict::ALL {
            assert_eq!(Verdict::from_name(v.name()), Some(v));
        }
        assert_eq!(Verdict::from_name("poison"), None);
        let rules = VerdictRules { minimum: [(Bias::ThinRecall, 0.1)].into() };
        assert_eq!((rules.minimum(Bias::ThinRecall), rules.minimum(Bias::BoundaryOffset)), (0.1, 0.25));
    }
}
