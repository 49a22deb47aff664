//! SQL text helpers shared by every stage: splitting a script into statements and walking their
//! significant tokens (squawk-syntax), classifying statements (transaction control,
//! non-transactional), positions (byte offset → line:column) and quoting.

pub mod position;
pub mod quote;
pub mod split;
