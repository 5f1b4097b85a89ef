//! What the commands print besides their results: progress and warnings while they run
//! (`report`), and the formatting of sizes, times and tables (`table`).

pub mod report;
pub mod table;
