//! Tandem domain types.
