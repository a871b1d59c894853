//! Workspace integration tests (one binary).

mod architecture;
mod backup_restore;
mod catalog;
mod copy;
mod corruption;
mod disk_images;
mod keys;
mod plugin_settings;
mod plugins;
mod prune;
mod readahead;
mod restore_attacks;
mod retention;
mod unchanged;
mod vocabulary;
