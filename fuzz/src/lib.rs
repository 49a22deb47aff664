//! The fuzz targets' oracles: the same checks the property tests run (`tests/parsers_prop.rs`),
//! from one file.

#[path = "../../tests/oracles/mod.rs"]
pub mod oracles;
