//! The GPU backend: burn's own operations (the trait's default bodies).

impl crate::KernelBackend for burn::backend::Cube {}
