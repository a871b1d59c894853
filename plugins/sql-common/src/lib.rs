//! The SQL core both SQL plugins build on (`sql-server` for instances in VMs, `arc-sql-mi`
//! for Arc SQL Managed Instance): they speak the same T-SQL to the same engine and keep
//! the same backup chains; only where the backup files live and how an instance is found
//! differ.
//!
//! - [`tsql`]: the queries (databases, files, msdb history) through the host's `sql`
//!   capability, rows read by column name, SQL Server's times.
//! - [`chain`]: full/differential/log chains, their problems (gap, fork, foreign full) and
//!   the restore sequence that reaches a moment.
//! - [`model`]: `chain.json`, the chain a restore point keeps, checked as hostile input.
//! - [`stored`]: how much of a backup file was new to the repository.
pub mod chain;
pub mod model;
pub mod stored;
pub mod tsql;
