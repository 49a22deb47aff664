//! SQL text helpers shared by every stage: splitting a script into statements and walking their
//! significant tokens (squawk-syntax), classifying statements (transaction control,
//! non-transactional), positions (byte offset → line:column), quoting, and the nesting guard that
//! keeps untrusted scripts from overflowing the parser's stack.

pub mod depth;
pub mod position;
pub mod quote;
pub mod split;
