//! The model-based property test (in progress).

/// How many random operation sequences the property test tries by default.
pub const DEFAULT_PROPTEST_CASES: u32 = 64;
