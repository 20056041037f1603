//! What a folder dataset's mask sets look like before any training: how many images each covers,
//! its class histogram, and how well each pair of sets agrees where both have a mask.

use echoseg_agree::pair_scores;
use echoseg_scene::{ClassTable, FolderDataset, MaskSet};

/// One mask set at a glance.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSetSummary {
    /// The set's name (`masks/NAME/`).
    pub name: String,
    /// Images it has a mask for.
    pub images: usize,
    /// Share of its pixels in each class, background first.
    pub class_shares: Vec<f64>,
}

/// Two mask sets compared on the images both cover.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSetPair {
    /// The first set's name.
    pub first: String,
    /// The second set's name.
    pub second: String,
    /// Images both cover.
    pub images: usize,
    /// Share of their common pixels with the same class.
    pub agreement: f64,
    /// Cohen's kappa over those pixels.
    pub kappa: f64,
}

/// `set`'s label maps of the images `names`, in that order.
fn maps_of<'a>(set: &'a MaskSet, names: &[&String]) -> Vec<&'a [u8]> {
    names.iter().map(|n| set.masks[*n].labels.as_slice()).collect()
}

/// Every mask set of a folder dataset, and every pair of them.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSetOverview {
    /// Images in the dataset.
    pub images: usize,
    /// Each set, in name order.
    pub sets: Vec<MaskSetSummary>,
    /// Each pair with at least one image in common.
    pub pairs: Vec<MaskSetPair>,
}

impl MaskSetOverview {
    /// Counts and compares every mask set of `folder`.
    pub fn of(folder: &FolderDataset, classes: &ClassTable) -> Self {
        let k = classes.len();
        let sets = folder
            .mask_sets
            .values()
            .map(|set| {
                let mut counts = vec![0u64; k];
                for mask in set.masks.values() {
                    mask.labels.iter().for_each(|&l| counts[usize::from(l)] += 1);
                }
                let total = counts.iter().sum::<u64>().max(1) as f64;
                MaskSetSummary {
                    name: set.name.clone(),
                    images: set.masks.len(),
                    class_shares: counts.iter().map(|&c| c as f64 / total).collect(),
                }
            })
            .collect();
        let all: Vec<_> = folder.mask_sets.values().collect();
        let mut pairs = Vec::new();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                let common: Vec<&String> = a.masks.keys().filter(|n| b.masks.contains_key(*n)).collect();
                if common.is_empty() {
                    continue;
                }
                let scores = pair_scores(&maps_of(a, &common), &maps_of(b, &common), k);
                pairs.push(MaskSetPair {
                    first: a.name.clone(),
                    second: b.name.clone(),
                    images: common.len(),
                    agreement: scores.agreement,
                    kappa: scores.kappa,
                });
            }
        }
        Self { images: folder.scenes.len(), sets, pairs }
    }

    /// The overview as lines for a terminal.
    pub fn lines(&self, classes: &ClassTable) -> Vec<String> {
        let mut lines = vec![format!("{} images; mask sets (images covered, class shares of their pixels):", self.images)];
        for s in &self.sets {
            let shares: Vec<String> = classes.names().iter().zip(&s.class_shares).map(|(n, v)| format!("{n} {:.1} %", 100.0 * v)).collect();
            lines.push(format!("  {:<16} {:>6} of {} images   {}", s.name, s.images, self.images, shares.join(", ")));
        }
        if !self.pairs.is_empty() {
            lines.push("pairwise, on the images both cover (pixel agreement, Cohen's kappa):".into());
            for p in &self.pairs {
                lines
                    .push(format!("  {} × {}: {} images, agreement {:.3}, kappa {:.3}", p.first, p.second, p.images, p.agreement, p.kappa));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echoseg_scene::{Image, LabelMap, Scene, Style};

    #[test]
    fn coverage_shares_agreement_and_kappa_match_a_hand_count() {
        let scene = |name: &str| Scene {
            index: 0,
            name: name.into(),
            image: Image::filled(2, 2, [0.5; 3]),
            truth: None,
            style: Style::Real,
            cue: false,
        };
        let map = |labels: [u8; 4]| LabelMap { width: 2, height: 2, labels: labels.to_vec() };
        let set = |name: &str, masks: Vec<(&str, LabelMap)>| {
            (name.to_string(), MaskSet { name: name.into(), masks: masks.into_iter().map(|(n, m)| (n.to_string(), m)).collect() })
        };
        let folder = FolderDataset {
            scenes: vec![scene("a"), scene("b")],
            mask_sets: [
                set("first", vec![("a", map([0, 1, 1, 0])), ("b", map([1, 1, 1, 1]))]),
                set("second", vec![("a", map([0, 1, 0, 0]))]),
            ]
            .into_iter()
            .collect(),
        };
        let classes = ClassTable::new(vec!["background".into(), "cell".into()]);
        let o = MaskSetOverview::of(&folder, &classes);
        assert_eq!((o.sets[0].images, o.sets[1].images), (2, 1));
        assert_eq!(o.sets[0].class_shares, vec![2.0 / 8.0, 6.0 / 8.0]);
        // On image a only: 3 of 4 pixels agree; chance agreement 0.5·0.75 + 0.5·0.25 = 0.5, so kappa = 0.5.
        let pair = &o.pairs[0];
        assert_eq!((pair.images, pair.agreement), (1, 0.75));
        assert!((pair.kappa - 0.5).abs() < 1e-12, "{}", pair.kappa);
        assert!(o.lines(&classes).iter().any(|l| l.contains("first × second: 1 images, agreement 0.750, kappa 0.500")));
    }
}
