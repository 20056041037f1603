//! Settings checked once, before any work (as linfa's `ParamGuard`): a [`Valid`] value can only
//! be made by [`Settings::validate`], so a training never meets an impossible value such as a
//! batch of zero images.

use std::ops::Deref;

use serde::Serialize;

/// A problem with one setting: the key (relative to its table) and what is wrong with it.
pub type SettingProblem = (String, String);

/// Settings that know their own problems.
pub trait Settings: Sized {
    /// Every problem with the settings, as (key, message) pairs, in a fixed order.
    fn problems(&self) -> Vec<SettingProblem>;

    /// The settings as a [`Valid`] value, or every problem they have.
    fn validate(self) -> Result<Valid<Self>, Vec<SettingProblem>> {
        let problems = self.problems();
        if problems.is_empty() { Ok(Valid(self)) } else { Err(problems) }
    }
}

/// Settings that passed [`Settings::validate`]. It reads like the settings themselves and
/// serialises exactly as they do, so hashes and ids made from it do not change.
#[derive(Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Valid<T>(T);

impl<T> Valid<T> {
    /// The settings inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Valid<T> {
    // The settings' own form: resume keys are built from it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Settings + Default> Default for Valid<T> {
    /// The default settings, which are valid by construction (a test checks each).
    fn default() -> Self {
        Valid(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByolConfig, EmaConfig, TrainConfig};

    #[test]
    fn defaults_are_valid_and_an_impossible_batch_never_reaches_training() {
        assert!(TrainConfig::default().problems().is_empty());
        assert!(EmaConfig::default().problems().is_empty());
        assert!(ByolConfig::default().problems().is_empty());
        let problems = TrainConfig { batch_size: 0, epochs: Some(0), ..TrainConfig::default() }.validate().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["epochs", "batch_size"]);
    }

    #[test]
    fn a_valid_value_serialises_and_prints_as_its_settings() {
        // Run ids hash the serialised settings and resume keys print them: validating must change neither.
        let raw = TrainConfig { epochs: Some(7), ..TrainConfig::default() };
        let valid = raw.clone().validate().unwrap();
        assert_eq!(serde_json::to_string(&valid).unwrap(), serde_json::to_string(&raw).unwrap());
        assert_eq!(format!("{valid:?}"), format!("{raw:?}"));
        assert_eq!(*valid, raw);
    }
}
