//! Strategies: who teaches whom after generation 0, and the treatment a configuration received
//! (generation 0's labels, or a strategy with a selection of its pseudo-labels).

use serde::{Deserialize, Serialize};

/// Who teaches whom in generations after the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// A model learns from its own outputs.
    #[serde(rename = "self")]
    SelfTraining,
    /// A model learns from another architecture's outputs.
    Cross,
    /// A model learns from the per-pixel majority of the other architectures (ties carry no loss).
    Ensemble,
    /// A model learns from the STAPLE consensus of the other architectures.
    Consensus,
    /// A model keeps learning from the labels plus the pool, the pool's targets coming online
    /// from a moving-average teacher of itself (mean teacher).
    Ema,
}

impl Strategy {
    /// The manifest and report name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SelfTraining => "self",
            Strategy::Cross => "cross",
            Strategy::Ensemble => "ensemble",
            Strategy::Consensus => "consensus",
            Strategy::Ema => "ema",
        }
    }
}

impl Strategy {
    /// Every strategy, in manifest order.
    pub const ALL: [Strategy; 5] = [Strategy::SelfTraining, Strategy::Cross, Strategy::Ensemble, Strategy::Consensus, Strategy::Ema];

    /// The strategy of a manifest or table name.
    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `strategy` column's value for generation 0, which learns from the source labels.
pub const LABELS: &str = "labels";
/// The `selection` column's value for a treatment that keeps every pseudo-label.
pub const EVERY_LABEL: &str = "all";

/// What a configuration learned from: generation 0's source labels, or a strategy's
/// pseudo-labels with the selection that chose among them. Tables write it as two columns
/// (`strategy`, `selection`); readers see it as `self` or `self + confidence0.9`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Treatment {
    /// Generation 0: the mixed-source labels.
    Labels,
    /// A later generation: pseudo-labels by `strategy`, of which `selection` kept some.
    Pseudo {
        /// Who taught.
        strategy: Strategy,
        /// The selection's name (`all` when every pseudo-label is kept).
        selection: String,
    },
}

impl Treatment {
    /// The strategy, `None` for generation 0's labels.
    pub fn strategy(&self) -> Option<Strategy> {
        match self {
            Treatment::Labels => None,
            Treatment::Pseudo { strategy, .. } => Some(*strategy),
        }
    }

    /// The `strategy` column: `labels` or the strategy's name.
    pub fn strategy_column(&self) -> &'static str {
        self.strategy().map_or(LABELS, Strategy::name)
    }

    /// The `selection` column: `all` for generation 0, which learns from every label.
    pub fn selection_column(&self) -> &str {
        match self {
            Treatment::Labels => EVERY_LABEL,
            Treatment::Pseudo { selection, .. } => selection,
        }
    }

    /// True when every label is learned from (generation 0, or a selection of `all`).
    pub fn keeps_every_label(&self) -> bool {
        let selection = self.selection_column();
        selection == EVERY_LABEL || selection.is_empty()
    }

    /// The treatment two table columns describe; `None` for a strategy name echoseg does not know.
    pub fn from_columns(strategy: &str, selection: &str) -> Option<Treatment> {
        if strategy == LABELS {
            return Some(Treatment::Labels);
        }
        let selection = if selection.is_empty() { EVERY_LABEL } else { selection };
        Some(Treatment::Pseudo { strategy: Strategy::from_name(strategy)?, selection: selection.to_string() })
    }

    /// The part of a run id that names the treatment: `self`, or `self.confidence0.9`.
    pub fn id_label(&self) -> String {
        if self.keeps_every_label() {
            self.strategy_column().to_string()
        } else {
            format!("{}.{}", self.strategy_column(), self.selection_column())
        }
    }
}

impl std::fmt::Display for Treatment {
    /// `self` when every pseudo-label is kept, `self + confidence0.9` for a selection of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.keeps_every_label() {
            f.write_str(self.strategy_column())
        } else {
            write!(f, "{} + {}", self.strategy_column(), self.selection_column())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treatments_round_trip_through_their_columns() {
        for strategy in Strategy::ALL {
            assert_eq!(Strategy::from_name(strategy.name()), Some(strategy));
            for selection in ["all", "confidence0.9"] {
                let t = Treatment::Pseudo { strategy, selection: selection.into() };
                assert_eq!(Treatment::from_columns(t.strategy_column(), t.selection_column()), Some(t));
            }
        }
        let t = Treatment::Pseudo { strategy: Strategy::SelfTraining, selection: "confidence0.9".into() };
        assert_eq!((t.to_string(), t.id_label()), ("self + confidence0.9".to_string(), "self.confidence0.9".to_string()));
        assert_eq!(Treatment::from_columns("labels", "all"), Some(Treatment::Labels));
        assert_eq!(Treatment::Labels.to_string(), "labels");
        assert_eq!(Treatment::from_columns("teach", "all"), None);
    }
}
