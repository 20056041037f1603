//! Errors of the agreement analyses.

/// Which set of maps an error is about: a rater (by index) or the truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Rater j (0-based, in the order given).
    Rater(usize),
    /// The truth maps.
    Truth,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Rater(j) => write!(f, "rater {}", j + 1),
            Who::Truth => write!(f, "the truth"),
        }
    }
}

/// What an analysis refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgreeError {
    /// Fewer raters than the analysis needs.
    #[error("{needed} or more raters are needed, got {got}")]
    TooFewRaters {
        /// The least the analysis works with.
        needed: usize,
        /// How many were given.
        got: usize,
    },
    /// STAPLE's rater-label tuples do not fit its 64-bit key.
    #[error(
        "{raters} raters with {classes} classes are too many combinations for STAPLE (classes^raters must stay below 2^64, classes at most 256)"
    )]
    TooManyCombinations {
        /// Raters.
        raters: usize,
        /// Classes.
        classes: usize,
    },
    /// A rater has a different number of images.
    #[error("{who} has {images} images, expected {expected}")]
    ImageCount {
        /// Whose maps.
        who: Who,
        /// Images it has.
        images: usize,
        /// Images of the first rater.
        expected: usize,
    },
    /// A map differs in size from the first rater's map of the same image.
    #[error("{who}, image {}: {pixels} pixels, expected {expected} (the first rater's size)", image + 1)]
    Size {
        /// Whose map.
        who: Who,
        /// Image index (0-based).
        image: usize,
        /// Pixels it has.
        pixels: usize,
        /// Pixels of the first rater's map.
        expected: usize,
    },
    /// A label is not below the class count.
    #[error("{who}, image {}: label {value} is not one of the {classes} classes 0..{}", image + 1, classes - 1)]
    Label {
        /// Whose map.
        who: Who,
        /// Image index (0-based).
        image: usize,
        /// The value found.
        value: u8,
        /// The class count.
        classes: usize,
    },
}
