//! Many generations: every bias's trend (`trends.csv`) as a lead sentence, a table and one figure
//! per bias, each pseudo-label mode a line with its interval band across generations.

use echoseg_agree::{Bias, Metric, Trend};
use echoseg_study::read::{PseudoLabels, ResultRow, SummaryRow, Treatment, TrendRow};

use crate::figures::{LineGrid, LinePanel, Series};
use crate::html::{Table, cell, interval_cell, number_cell, number_text};

/// The biases with a trend, in the order of [`Bias::ALL`].
fn biases(trends: &[TrendRow]) -> Vec<Bias> {
    Bias::ALL.into_iter().filter(|b| trends.iter().any(|t| t.bias == *b)).collect()
}

/// One line grid per bias: a panel per strategy (with its selection) and architecture, a line
/// per pseudo-label mode with its summary interval band at every generation, from the chain's
/// configuration (its teacher as `rows` name it: with three architectures, `cross` also trains
/// students outside the chain at generation 1).
pub fn trend_grids(trends: &[TrendRow], summary: &[SummaryRow], rows: &[ResultRow]) -> Vec<(Bias, LineGrid)> {
    let mut chains: Vec<(Treatment, &str)> = trends.iter().map(|t| (t.treatment.clone(), t.model.as_str())).collect();
    chains.sort();
    chains.dedup();
    let mut panels_of: Vec<(Treatment, &str)> = chains.iter().map(|(t, m)| (t.with_pseudo_labels(PseudoLabels::Replace), *m)).collect();
    panels_of.sort();
    panels_of.dedup();
    let last = trends.iter().map(|t| t.generations).max().unwrap_or(0);
    biases(trends)
        .into_iter()
        .map(|bias| {
            let metric = Metric::Bias(bias);
            let panels = panels_of
                .iter()
                .map(|(panel, model)| {
                    let series = chains
                        .iter()
                        .filter(|(t, m)| m == model && t.with_pseudo_labels(PseudoLabels::Replace) == *panel)
                        .map(|(treatment, _)| {
                            let at: Vec<&SummaryRow> = (0..=last)
                                .filter_map(|g| {
                                    let wanted = treatment.at_generation(u32::try_from(g).unwrap_or(u32::MAX));
                                    let chain = |r: &&ResultRow| r.is_model() && r.chain && r.generation == g && r.treatment == wanted;
                                    let teacher = rows.iter().filter(chain).find(|r| r.model == *model).map(|r| r.teacher.as_str());
                                    summary.iter().find(|s| {
                                        s.generation == g
                                            && s.treatment == wanted
                                            && s.model == *model
                                            && s.metric == metric
                                            && teacher.is_none_or(|t| s.teacher == t)
                                    })
                                })
                                .collect();
                            let mode = treatment.pseudo_labels();
                            Series {
                                label: mode.name().to_string(),
                                colour: PseudoLabels::ALL.iter().position(|m| *m == mode).unwrap_or(0),
                                dashed: mode == PseudoLabels::Accumulate,
                                points: at.iter().map(|s| (s.generation as f64, s.estimate)).collect(),
                                band: at.iter().map(|s| (s.generation as f64, s.low, s.high)).collect(),
                            }
                        })
                        .collect();
                    LinePanel {
                        title: format!("{model}, {panel}"),
                        x_label: "generation".into(),
                        y_label: bias.display_name(),
                        series,
                        references: Vec::new(),
                        integer_x: true,
                    }
                })
                .collect();
            (bias, LineGrid { panels, columns: 2 })
        })
        .collect()
}

/// The lead sentence: per mode, how many trends drift, recede, stay bounded or are undecided
/// (collapsed and unlearned ones counted with the undecided: none says where the bias goes), and
/// which biases drift.
pub fn trend_lead(trends: &[TrendRow]) -> Option<String> {
    let last = trends.iter().map(|t| t.generations).max()?;
    let parts: Vec<String> = PseudoLabels::ALL
        .into_iter()
        .filter_map(|mode| {
            let of_mode: Vec<&TrendRow> = trends.iter().filter(|t| t.treatment.pseudo_labels() == mode).collect();
            if of_mode.is_empty() {
                return None;
            }
            let count = |trend: Trend| of_mode.iter().filter(|t| t.trend == trend).count();
            // Named without the mode, which the clause already says.
            let named = |trend: Trend| -> String {
                let names: Vec<String> = of_mode
                    .iter()
                    .filter(|t| t.trend == trend)
                    .map(|t| {
                        format!("{} of {} under {}", t.bias.display_name(), t.model, t.treatment.with_pseudo_labels(PseudoLabels::Replace))
                    })
                    .collect();
                if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
            };
            let how = match mode {
                PseudoLabels::Replace => "replacing the pseudo-labels every generation",
                PseudoLabels::Accumulate => "accumulating them",
            };
            Some(format!(
                "{how}, {} of {} bias trends drift{}, {} recede{}, {} stay bounded and {} are undecided",
                count(Trend::Drifts),
                of_mode.len(),
                named(Trend::Drifts),
                count(Trend::Recedes),
                named(Trend::Recedes),
                count(Trend::Bounded),
                count(Trend::Undecided) + count(Trend::Collapsed) + count(Trend::Unlearned),
            ))
        })
        .collect();
    Some(format!("Over {last} generations: {}.", parts.join("; ")))
}

/// Every trend: the bias at generation 0 and at the last, its slope per generation and the drift
/// over the generations, with the judgement.
pub fn trend_table(trends: &[TrendRow]) -> Table {
    let header = ["strategy", "model", "bias", "generation 0 → last", "slope of its size per generation", "drift of its size", "trend"];
    let rows = trends
        .iter()
        .map(|t| {
            let decimals = t.bias.decimals();
            let signed = t.bias.signed();
            let trend = match (t.trend, t.seeds_needed) {
                (Trend::Undecided, Some(n)) => format!("undecided ({n} seeds would decide)"),
                (trend, _) => trend.name().to_string(),
            };
            vec![
                cell(&t.treatment.to_string()),
                cell(&t.model),
                cell(&t.bias.display_name()),
                // The levels' intervals are in the figure; the table keeps the width for the slope's.
                number_cell(&format!("{} → {}", number_text(t.first[0], decimals, signed), number_text(t.last[0], decimals, signed))),
                interval_cell(Some(t.slope), decimals + 1, true),
                interval_cell(Some(t.drift), decimals, true),
                cell(&trend),
            ]
        })
        .collect();
    Table { header: header.map(String::from).to_vec(), rows }
}

#[cfg(test)]
mod tests {
    use echoseg_study::read::Strategy;

    use super::*;

    fn trend(mode: PseudoLabels, bias: Bias, judged: Trend) -> TrendRow {
        TrendRow {
            treatment: Treatment::every_label(Strategy::SelfTraining).with_pseudo_labels(mode),
            model: "fcn".into(),
            bias,
            generations: 3,
            first: [0.5, 0.4, 0.6],
            last: [0.2, 0.1, 0.3],
            slope: [0.1, 0.05, 0.15],
            drift: [0.3, 0.15, 0.45],
            minimum: 0.05,
            trend: judged,
            seeds_needed: None,
            repeats: 4,
        }
    }

    fn summary(generation: i64, treatment: Treatment, estimate: f64) -> SummaryRow {
        SummaryRow {
            generation,
            treatment,
            model: "fcn".into(),
            teacher: String::new(),
            metric: Metric::Bias(Bias::ThinRecall),
            estimate,
            low: estimate - 0.1,
            high: estimate + 0.1,
        }
    }

    #[test]
    fn each_mode_is_a_line_through_the_shared_generations_and_the_lead_names_what_drifts() {
        let trends = [
            trend(PseudoLabels::Replace, Bias::ThinRecall, Trend::Drifts),
            trend(PseudoLabels::Accumulate, Bias::ThinRecall, Trend::Bounded),
        ];
        let replace = Treatment::every_label(Strategy::SelfTraining);
        let accumulate = replace.with_pseudo_labels(PseudoLabels::Accumulate);
        let mut rows = vec![summary(0, Treatment::Labels, 0.9), summary(1, replace.clone(), 0.8)];
        rows.extend((2..=3).flat_map(|g| [summary(g, replace.clone(), 0.9 - 0.1 * g as f64), summary(g, accumulate.clone(), 0.85)]));
        let grids = trend_grids(&trends, &rows, &[]);
        assert_eq!(grids.len(), 1);
        let (bias, grid) = &grids[0];
        assert_eq!((*bias, grid.panels.len()), (Bias::ThinRecall, 1));
        let lines = &grid.panels[0].series;
        assert_eq!(lines.iter().map(|s| (s.label.as_str(), s.dashed)).collect::<Vec<_>>(), [("replace", false), ("accumulate", true)]);
        // Both lines start at generation 0 and pass through the one generation-1 run.
        assert_eq!(lines[0].points, [(0.0, 0.9), (1.0, 0.8), (2.0, 0.7), (3.0, 0.6)]);
        assert_eq!(lines[1].points[..2], [(0.0, 0.9), (1.0, 0.8)]);
        assert_eq!(lines[1].points[3], (3.0, 0.85));

        // With a second teacher outside the chain at generation 1, the chain's own one is drawn.
        let outside = SummaryRow { teacher: "a-model-outside".into(), estimate: 0.1, ..summary(1, replace.clone(), 0.0) };
        let chain = ResultRow {
            subject: echoseg_study::read::Subject::Model,
            generation: 1,
            treatment: replace.clone(),
            model: "fcn".into(),
            teacher: "dilated".into(),
            peer: String::new(),
            repeat: 0,
            metric: Metric::Miou,
            value: 0.7,
            chain: true,
            run: "g1".into(),
        };
        let mut with_outside = vec![outside];
        with_outside
            .extend(rows.iter().map(|r| if r.generation == 1 { SummaryRow { teacher: "dilated".into(), ..r.clone() } } else { r.clone() }));
        let grids = trend_grids(&trends, &with_outside, &[chain]);
        assert_eq!(grids[0].1.panels[0].series[0].points[1], (1.0, 0.8), "the chain's teacher, not the first row found");

        let lead = trend_lead(&trends).unwrap();
        assert!(lead.starts_with("Over 3 generations: replacing the pseudo-labels every generation, 1 of 1 bias trends drift (thin-structure recall of fcn under self)"), "{lead}");
        assert!(lead.contains("accumulating them, 0 of 1 bias trends drift, 0 recede, 1 stay bounded"), "{lead}");
    }
}
