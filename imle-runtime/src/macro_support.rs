//! Support for the code that `#[imle_layer]` generates. Not a public API: names here may
//! change in any release.
