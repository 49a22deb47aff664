//! SQL text helpers: splitting a script into statements (squawk-syntax) and classifying them.

pub mod split;
