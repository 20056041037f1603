//! Targets such as `miou >= 0.8`: a goal a reader sets in the manifest, judged against each
//! configuration's interval, so "met" means the whole interval meets it.

use echoseg_agree::Metric;
use serde::Serialize;

/// How a metric is compared with a target's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Comparison {
    /// `>=`
    AtLeast,
    /// `<=`
    AtMost,
    /// `>`
    Above,
    /// `<`
    Below,
}

impl Comparison {
    /// True when a lower value is on the target's good side (`<=`, `<`).
    pub fn lower_is_better(self) -> bool {
        matches!(self, Comparison::AtMost | Comparison::Below)
    }

    fn holds(self, x: f64, value: f64) -> bool {
        match self {
            Comparison::AtLeast => x >= value,
            Comparison::AtMost => x <= value,
            Comparison::Above => x > value,
            Comparison::Below => x < value,
        }
    }
}

/// A validated target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The target as written, normalised (`miou >= 0.8`).
    pub text: String,
    /// A metric of the summary table (one of [`Metric::counted`]).
    pub metric: Metric,
    /// The comparison.
    pub comparison: Comparison,
    /// The value compared with.
    pub value: f64,
}

/// Whether a configuration meets a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Judgement {
    /// The whole interval meets it.
    Met,
    /// No part of the interval meets it.
    Missed,
    /// The interval straddles the target: more seeds or test images would tell.
    Undecided,
}

impl Judgement {
    /// The name in tables and the report.
    pub fn name(self) -> &'static str {
        match self {
            Judgement::Met => "met",
            Judgement::Missed => "missed",
            Judgement::Undecided => "undecided",
        }
    }

    /// Every judgement.
    pub const ALL: [Judgement; 3] = [Judgement::Met, Judgement::Missed, Judgement::Undecided];

    /// The judgement a table word stands for.
    pub fn from_name(name: &str) -> Option<Judgement> {
        Judgement::ALL.into_iter().find(|j| j.name() == name)
    }
}

impl Target {
    /// Parses `METRIC OP VALUE` with OP one of `>=`, `<=`, `>`, `<`; the error says what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ops = [(">=", Comparison::AtLeast), ("<=", Comparison::AtMost), (">", Comparison::Above), ("<", Comparison::Below)];
        let Some((at, op, comparison)) = ops.iter().find_map(|&(op, c)| text.find(op).map(|at| (at, op, c))) else {
            return Err(format!("\"{}\" is not METRIC OP VALUE such as \"miou >= 0.8\" (OP: >=, <=, >, <)", text.escape_debug()));
        };
        let name = text[..at].trim();
        let Some(metric) = Metric::from_name(name).filter(|m| Metric::counted().any(|i| i == *m)) else {
            let allowed: Vec<String> = Metric::counted().map(|m| m.name()).collect();
            return Err(format!("\"{}\": unknown metric `{name}`; allowed: {}", text.escape_debug(), allowed.join(", ")));
        };
        let value: f64 = text[at + op.len()..]
            .trim()
            .parse()
            .map_err(|_| format!("\"{}\": `{}` is not a number", text.escape_debug(), text[at + op.len()..].trim()))?;
        if !value.is_finite() {
            return Err(format!("\"{}\": the value must be finite", text.escape_debug()));
        }
        Ok(Self { text: format!("{metric} {op} {value}"), metric, comparison, value })
    }

    /// Judges an interval [`low`, `high`] (the estimate lies inside it).
    pub fn judge(&self, low: f64, high: f64) -> Judgement {
        match (self.comparison.holds(low, self.value), self.comparison.holds(high, self.value)) {
            (true, true) => Judgement::Met,
            (false, false) => Judgement::Missed,
            _ => Judgement::Undecided,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_met_only_when_its_whole_interval_meets_it() {
        let t = Target::parse(" miou>=0.8 ").unwrap();
        assert_eq!((t.text.as_str(), t.comparison, t.value), ("miou >= 0.8", Comparison::AtLeast, 0.8));
        assert_eq!(t.judge(0.81, 0.9), Judgement::Met);
        assert_eq!(t.judge(0.8, 0.9), Judgement::Met);
        assert_eq!(t.judge(0.7, 0.85), Judgement::Undecided);
        assert_eq!(t.judge(0.6, 0.79), Judgement::Missed);
        let offset = Target::parse("boundary_offset < 0.5").unwrap();
        assert_eq!(offset.judge(-0.2, 0.4), Judgement::Met);
        assert_eq!(offset.judge(0.5, 0.9), Judgement::Missed);
    }

    #[test]
    fn a_bad_target_says_what_is_allowed() {
        assert!(Target::parse("miou = 0.8").unwrap_err().contains("OP: >=, <=, >, <"));
        assert!(Target::parse("accuracy >= 0.8").unwrap_err().contains("allowed: miou, boundary_offset"));
        assert!(Target::parse("miou >= high").unwrap_err().contains("`high` is not a number"));
    }

    #[test]
    fn judgements_round_trip_through_their_names() {
        for j in Judgement::ALL {
            assert_eq!(Judgement::from_name(j.name()), Some(j));
        }
        assert_eq!(Target::parse("thin_recall > 0.5").unwrap().metric, Metric::Bias(echoseg_agree::Bias::ThinRecall));
    }
}
