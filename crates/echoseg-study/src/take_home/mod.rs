//! The last stage: what a user takes from a finished study: committee masks exported for every
//! image, trained networks applied to new images, and a known-answer study checked against its
//! answer.

pub mod answers;
pub mod export;
pub mod predict;
