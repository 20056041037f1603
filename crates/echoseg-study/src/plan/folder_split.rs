//! How a folder dataset's images are split: test, pool, training and validation are drawn from
//! all images, whatever mask sets exist, and each training image gets its teachers. Decided on
//! which images each source covers, before any label is copied, so it is tested without pixels.

use std::collections::BTreeMap;

use echoseg_scene::Rng;

use crate::plan::manifest::{Overlap, SplitSpec};

/// Which images one source can label.
#[derive(Clone, Debug, PartialEq)]
pub enum Coverage {
    /// A mask set: the images it has a mask for.
    Masks(Vec<bool>),
    /// A simulated labeller: any image (with truth when `needs_truth`), at most `limit` of them.
    Simulated {
        /// Exact and manual labellers start from the truth.
        needs_truth: bool,
        /// The source's `images`, when written.
        limit: Option<usize>,
    },
}

/// What the split is drawn from.
#[derive(Clone, Debug)]
pub struct SplitInputs<'a> {
    /// Whether each image has a truth mask.
    pub has_truth: &'a [bool],
    /// Whether the dataset has a truth set at all (then test images must have truth).
    pub truth_set: bool,
    /// Each source's coverage, in manifest order.
    pub coverage: &'a [Coverage],
    /// Each source's weight for `overlap = "assign"`.
    pub shares: &'a [f32],
    /// Sizes and overlap.
    pub split: &'a SplitSpec,
    /// The study seed.
    pub seed: u64,
}

/// One training or validation sample: an image and the source whose labels teach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Teaching {
    /// Image index.
    pub image: usize,
    /// Source index.
    pub source: usize,
}

/// The drawn split, as image indices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderSplit {
    /// Test images (with truth where a truth set exists).
    pub test: Vec<usize>,
    /// Unlabelled pool images (masks on them are not trained on).
    pub pool: Vec<usize>,
    /// Training samples.
    pub train: Vec<Teaching>,
    /// Validation samples (images disjoint from the training samples' images).
    pub validation: Vec<Teaching>,
    /// Mask-set sources' masks on test images, scored against truth as the sources' own quality.
    pub source_test: Vec<Teaching>,
    /// Images left out: not in test or pool, and no source labels them.
    pub unused: Vec<usize>,
}

/// Why no split could be drawn.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// No image qualifies for the test split.
    #[error("no image can be a test image: {0}")]
    NoTest(String),
    /// A source ended up teaching no training image.
    #[error("source {source_name} teaches no training image: {reason}")]
    Idle {
        /// The source's name.
        source_name: String,
        /// Why, and what to change.
        reason: String,
    },
}

/// How many of `images` labelled images go to validation for a share `validation`.
pub fn validation_count(images: usize, validation: f32) -> usize {
    if validation <= 0.0 || images < 2 {
        return 0;
    }
    ((images as f32 * validation).round() as usize).clamp(1, images - 1)
}

/// Takes up to `count` images in `order` that are not yet taken and pass `eligible`, those for
/// which `preferred` holds first (so test and pool use unlabelled images before labelled ones).
fn take(
    order: &[usize],
    taken: &mut [bool],
    count: usize,
    eligible: impl Fn(usize) -> bool,
    preferred: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let preferred = &preferred;
    let candidates = |want: bool| order.iter().copied().filter(move |&i| preferred(i) == want);
    let picked: Vec<usize> = candidates(true).chain(candidates(false)).filter(|&i| !taken[i] && eligible(i)).take(count).collect();
    for &i in &picked {
        taken[i] = true;
    }
    // Back in draw order, so which images are preferred does not reorder the split.
    let mut rank = vec![0; taken.len()];
    order.iter().enumerate().for_each(|(r, &i)| rank[i] = r);
    let mut picked = picked;
    picked.sort_by_key(|&i| rank[i]);
    picked
}

/// Draws the split; `names` names the sources in messages.
pub fn split_folder(inputs: &SplitInputs<'_>, names: &[String]) -> Result<FolderSplit, SplitError> {
    let n = inputs.has_truth.len();
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(inputs.seed, "folder-split").shuffle(&mut order);
    let masked = |i: usize| inputs.coverage.iter().any(|c| matches!(c, Coverage::Masks(m) if m[i]));
    let truth_ok = |i: usize| !inputs.truth_set || inputs.has_truth[i];
    let mut taken = vec![false; n];

    let test = take(&order, &mut taken, inputs.split.test.of(n), truth_ok, |i| !masked(i));
    if test.is_empty() {
        let why = if inputs.truth_set { "no image has a truth mask" } else { "the dataset has no image" };
        return Err(SplitError::NoTest(why.into()));
    }
    let pool = take(&order, &mut taken, inputs.split.pool.of(n), |_| true, |i| !masked(i));

    // The rest is labelled by whichever sources cover it.
    let rest: Vec<usize> = order.iter().copied().filter(|&i| !taken[i]).collect();
    let covers: Vec<Vec<bool>> = inputs
        .coverage
        .iter()
        .map(|c| {
            let mut covered = vec![false; n];
            match c {
                Coverage::Masks(m) => rest.iter().filter(|&&i| m[i]).for_each(|&i| covered[i] = true),
                Coverage::Simulated { needs_truth, limit } => rest
                    .iter()
                    .filter(|&&i| !needs_truth || inputs.has_truth[i])
                    .take(limit.unwrap_or(usize::MAX))
                    .for_each(|&i| covered[i] = true),
            }
            covered
        })
        .collect();
    // Each remaining image with the sources that label it; images none labels are unused.
    let (mut labelled, mut unused): (Vec<(usize, Vec<usize>)>, Vec<usize>) = (Vec::new(), Vec::new());
    for &i in &rest {
        let teachers: Vec<usize> = (0..covers.len()).filter(|&s| covers[s][i]).collect();
        if teachers.is_empty() {
            unused.push(i);
        } else {
            labelled.push((i, teachers));
        }
    }

    // Validation images are held out per group of images the same sources cover, so a source
    // that labels few images still gets a validation image, and no image is in both splits.
    let mut groups: BTreeMap<&[usize], Vec<usize>> = BTreeMap::new();
    for (i, teachers) in &labelled {
        groups.entry(teachers).or_default().push(*i);
    }
    let mut held = vec![false; n];
    for images in groups.values() {
        let count = validation_count(images.len(), inputs.split.validation);
        images[images.len() - count..].iter().for_each(|&i| held[i] = true);
    }

    let mut assign_rng = Rng::new(inputs.seed, "folder-assign");
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for (i, teachers) in &labelled {
        let chosen = match inputs.split.overlap {
            Overlap::All => teachers.clone(),
            Overlap::Assign => vec![draw(teachers, inputs.shares, &mut assign_rng)],
        };
        let into = if held[*i] { &mut validation } else { &mut train };
        into.extend(chosen.into_iter().map(|source| Teaching { image: *i, source }));
    }
    for (s, name) in names.iter().enumerate() {
        if !train.iter().any(|t| t.source == s) {
            let reason = match (&inputs.coverage[s], inputs.split.overlap) {
                (Coverage::Masks(m), _) if !m.iter().any(|&b| b) => "its mask set is empty".to_string(),
                (_, Overlap::Assign) if covers[s].iter().any(|&b| b) => {
                    "the draw gave every image it labels to another source; raise its `share`".to_string()
                }
                _ => "every image it labels went to the test or pool split; lower split.test or split.pool".to_string(),
            };
            return Err(SplitError::Idle { source_name: name.clone(), reason });
        }
    }
    let source_test = test
        .iter()
        .flat_map(|&i| {
            inputs
                .coverage
                .iter()
                .enumerate()
                .filter(move |(_, c)| matches!(c, Coverage::Masks(m) if m[i]))
                .map(move |(source, _)| Teaching { image: i, source })
        })
        .collect();
    Ok(FolderSplit { test, pool, train, validation, source_test, unused })
}

/// One of `candidates`, drawn with probability proportional to its share.
fn draw(candidates: &[usize], shares: &[f32], rng: &mut Rng) -> usize {
    let total: f32 = candidates.iter().map(|&s| shares[s]).sum();
    let mut u = rng.unit() * total;
    for &s in candidates {
        u -= shares[s];
        if u < 0.0 {
            return s;
        }
    }
    candidates[candidates.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::manifest::SplitSize;

    fn spec(test: SplitSize, pool: SplitSize, overlap: Overlap) -> SplitSpec {
        SplitSpec { validation: 0.2, test, pool, overlap }
    }

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|s| format!("s{s}")).collect()
    }

    fn images_of(samples: &[Teaching]) -> Vec<usize> {
        let mut v: Vec<usize> = samples.iter().map(|t| t.image).collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn every_mask_set_over_every_image_splits_without_sharing_an_image() {
        let n = 100;
        let coverage = vec![Coverage::Masks(vec![true; n]); 3];
        let split = spec(SplitSize::Share(0.2), SplitSize::Share(0.25), Overlap::All);
        let inputs =
            SplitInputs { has_truth: &[true; 100], truth_set: true, coverage: &coverage, shares: &[1.0; 3], split: &split, seed: 7 };
        let s = split_folder(&inputs, &names(3)).unwrap();
        assert_eq!((s.test.len(), s.pool.len()), (20, 25));
        let (train, val) = (images_of(&s.train), images_of(&s.validation));
        assert_eq!((train.len(), val.len()), (44, 11), "55 labelled images, 0.2 of them held out");
        // Every source teaches every training image: three raters, three samples.
        assert_eq!(s.train.len(), 3 * 44);
        let mut all: Vec<usize> = s.test.iter().chain(&s.pool).chain(&train).chain(&val).copied().collect();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "each image in exactly one split");
        assert_eq!(s.source_test.len(), 3 * 20, "each source's masks on the test images are scored");
        assert_eq!(split_folder(&inputs, &names(3)).unwrap(), s, "seeded");
        let other = split_folder(&SplitInputs { seed: 8, ..inputs.clone() }, &names(3)).unwrap();
        assert_ne!(other.test, s.test);
    }

    #[test]
    fn assign_draws_one_teacher_per_image_in_proportion_to_the_shares() {
        let n = 1000;
        let coverage = vec![Coverage::Masks(vec![true; n]); 2];
        let split = spec(SplitSize::Count(10), SplitSize::Count(0), Overlap::Assign);
        let inputs =
            SplitInputs { has_truth: &vec![true; n], truth_set: true, coverage: &coverage, shares: &[3.0, 1.0], split: &split, seed: 1 };
        let s = split_folder(&inputs, &names(2)).unwrap();
        assert_eq!(s.train.len() + s.validation.len(), 990, "one sample per labelled image");
        let first = s.train.iter().chain(&s.validation).filter(|t| t.source == 0).count() as f64 / 990.0;
        assert!((first - 0.75).abs() < 0.04, "share 3:1 gave {first}");
    }

    #[test]
    fn test_images_have_truth_and_prefer_images_no_source_labels() {
        // Truth on the first half; source 0 masks every even image.
        let n = 40;
        let has_truth: Vec<bool> = (0..n).map(|i| i < 20).collect();
        let coverage = vec![Coverage::Masks((0..n).map(|i| i % 2 == 0).collect())];
        let split = spec(SplitSize::Count(8), SplitSize::Count(4), Overlap::All);
        let inputs = SplitInputs { has_truth: &has_truth, truth_set: true, coverage: &coverage, shares: &[1.0], split: &split, seed: 3 };
        let s = split_folder(&inputs, &names(1)).unwrap();
        assert!(s.test.iter().all(|&i| i < 20), "test images have truth");
        assert_eq!(
            s.test.iter().filter(|&&i| i % 2 == 0).count(),
            0,
            "ten unlabelled images with truth exist, so no mask is spent on test"
        );
        assert!(s.pool.iter().all(|&i| i % 2 == 1), "the pool takes unlabelled images first");
        assert!(s.train.iter().chain(&s.validation).all(|t| t.image % 2 == 0));
        assert_eq!(s.unused.len(), 20 - 8 - 4, "odd images neither test nor pool are unused");
    }

    #[test]
    fn a_source_left_without_training_images_is_named() {
        let n = 10;
        let coverage = vec![Coverage::Masks(vec![true; n]), Coverage::Masks((0..n).map(|i| i == 0).collect())];
        let split = spec(SplitSize::Count(1), SplitSize::Count(0), Overlap::All);
        let inputs =
            SplitInputs { has_truth: &[true; 10], truth_set: true, coverage: &coverage, shares: &[1.0; 2], split: &split, seed: 0 };
        // Whether image 0 lands in test depends on the draw; with every image as test it must.
        let all_test = spec(SplitSize::Count(10), SplitSize::Count(0), Overlap::All);
        let err = split_folder(&SplitInputs { split: &all_test, ..inputs.clone() }, &names(2)).unwrap_err().to_string();
        assert!(err.contains("source s0 teaches no training image: every image it labels went to the test or pool split"), "{err}");
        let no_truth = split_folder(&SplitInputs { has_truth: &[false; 10], ..inputs }, &names(2)).unwrap_err().to_string();
        assert!(no_truth.contains("no image has a truth mask"), "{no_truth}");
    }
}
