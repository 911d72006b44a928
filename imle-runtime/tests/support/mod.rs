//! Shared by the CUDA tests.
#![allow(dead_code)]

pub mod cases;
