//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// How progress is shown (`--progress`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressArg {
    /// A bar on a terminal, unless --json or --quiet.
    Auto,
    /// JSON status lines on stdout (with --json).
    Json,
    /// Nothing.
    None,
}

/// Backup and disaster recovery for Azure Local and Hyper-V.
///
/// The repository is chosen with -r/--repo or REHYDRA_REPOSITORY. The password comes from
/// REHYDRA_PASSWORD, --password-file (REHYDRA_PASSWORD_FILE), or a prompt.
///
/// Exit codes: 0 success; 1 failure; 2 bad input; 3 backup made but some files could not
/// be read (assess: part of the estate could not be read); 10 not a repository; 11 locked; 12 wrong password (as restic); 13 restore target exists;
/// 14 damaged data (or check found errors); 15 repository format too new; 16 no space;
/// 17 plugin refused (unsigned, untrusted, tampered, wrong contract); 18 plugin failed or
/// was stopped at a limit; 130 cancelled.
/// What separates folders in a list of them, as in `PATH`: `:` would split `C:\…` apart.
const PATH_LIST_SEPARATOR: char = if cfg!(windows) { ';' } else { ':' };

#[derive(Parser, Debug)]
#[command(name = "rehydra", version, about, long_about)]
pub struct Cli {
    /// Repository location (a folder or an SMB/UNC path).
    #[arg(
        short = 'r',
        long = "repo",
        env = "REHYDRA_REPOSITORY",
        global = true,
        default_value = ""
    )]
    pub repo: String,
    /// Read the password from this file (first line).
    #[arg(long, env = "REHYDRA_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Get the password from a command's first output line, e.g. `secret-tool lookup
    /// rehydra repo` or a vault's CLI (run by the system shell; its error output is
    /// shown, its exit status checked). Used when no --password-file is given.
    #[arg(
        long,
        env = "REHYDRA_PASSWORD_COMMAND",
        global = true,
        value_name = "COMMAND"
    )]
    pub password_command: Option<String>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long work shows its progress: auto (a bar on a terminal, unless --json or
    /// --quiet), json (with --json: one JSON status line at the start and end of each
    /// phase and at most every second between, then the result as one line; every line
    /// on stdout is then a JSON object with a `message_type`), or none.
    #[arg(long, value_enum, env = "REHYDRA_PROGRESS", default_value_t = ProgressArg::Auto, global = true)]
    pub progress: ProgressArg,
    /// No progress output.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Also print the plugins' debug lines (each T-SQL statement the host runs for them,
    /// and what they log at debug level); the job log and the log file keep them either way.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Folder for the local chunk-index cache (default: the user's cache folder).
    #[arg(long, env = "REHYDRA_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Do not use a local cache (slower: the index is read from the repository every run).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Limit what is written to the repository to this many KiB/s (all threads together).
    #[arg(long, env = "REHYDRA_LIMIT_UPLOAD", value_name = "KiB/s", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_upload: Option<u64>,
    /// Limit what is read from the repository to this many KiB/s (all threads together).
    #[arg(long, env = "REHYDRA_LIMIT_DOWNLOAD", value_name = "KiB/s", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_download: Option<u64>,
    /// Catalog file (default: catalog.db in the user's data folder).
    #[arg(long, env = "REHYDRA_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,
    /// Do not record anything in the catalog.
    #[arg(long, global = true)]
    pub no_catalog: bool,
    /// Extra plugin folders, searched before the user's and the system's; `plugins install`
    /// writes into the first of them (default: the user's plugin folder). In
    /// REHYDRA_PLUGIN_PATH separated as in PATH (`:`, on Windows `;`).
    #[arg(
        long = "plugin-dir",
        env = "REHYDRA_PLUGIN_PATH",
        global = true,
        value_delimiter = PATH_LIST_SEPARATOR
    )]
    pub plugin_dirs: Vec<PathBuf>,
    /// Developer mode: load unsigned plugins and untrusted publishers (never tampered files).
    #[arg(long = "dev", env = "REHYDRA_PLUGIN_DEV", global = true)]
    pub developer_mode: bool,
    /// Cap on the memory of any plugin call, in MiB (a plugin gets the lower of what its
    /// manifest asks and this; the host's own cap is 4096). `plugins info` shows both.
    #[arg(long, env = "REHYDRA_PLUGIN_MAX_MEMORY_MIB", global = true, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub plugin_max_memory_mib: Option<u64>,
    /// Cap on the time of any plugin call, in seconds (a plugin gets the lower of what its
    /// manifest asks and this; the host's own cap is 86400).
    #[arg(long, env = "REHYDRA_PLUGIN_MAX_SECONDS", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub plugin_max_seconds: Option<u64>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new, encrypted repository.
    Init(InitArgs),
    /// Back up folders, files, a stream from stdin, or raw disk images.
    Backup(BackupArgs),
    /// List restore points (`snapshots`, restic's word, is accepted too).
    #[command(visible_alias = "points", alias = "snapshots")]
    RestorePoints(FilterArgs),
    /// Restore a restore point (or part of it) to a folder or file.
    Restore(RestoreArgs),
    /// Show what changed between two restore points.
    Diff {
        /// First restore point (id prefix or `latest`).
        from: String,
        /// Second restore point.
        to: String,
    },
    /// Verify the repository: structure, and with --read-data every byte.
    Check(CheckArgs),
    /// Remove restore points by a retention policy (data is freed by prune).
    Forget(ForgetArgs),
    /// Copy restore points into another repository (an offsite or second copy). Every
    /// chunk is read and verified here, then sealed with the target's keys; restore points
    /// already copied are skipped, and chunks the previous copy of the same asset holds
    /// are not read again. Nothing is committed in the target until a copy is complete.
    Copy(CopyArgs),
    /// Delete data no restore point uses (safe while backups run).
    Prune(PruneArgs),
    /// Manage key slots (passwords).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Repository statistics: sizes, deduplication, index.
    Stats,
    /// Assess an estate for a report (no repository needed): sweep it through the
    /// installed plugins in read-only calls, join the restore points of -r and --join, and
    /// write the findings, score, top actions and sizing as JSON, CSV, HTML and PDF.
    /// `assess diff` compares two assessments.
    Assess(crate::assess::AssessArgs),
    /// The estate as the desktop app's inventory shows it: assets a plugin discovers (with
    /// --discover) and everything the repository holds, with protection status, age of
    /// the last restore point against the RPO, and risk badges.
    Inventory {
        /// Hours a restore point stays fresh.
        #[arg(long, default_value_t = 24.0)]
        rpo_hours: f64,
        /// Run this plugin's discovery first.
        #[arg(long)]
        discover: Option<String>,
        /// Discovery settings as name=value, checked against what the plugin declares
        /// (`rehydra plugins info ID` lists them).
        #[arg(long = "set", value_name = "NAME=VALUE", requires = "discover")]
        settings: Vec<String>,
    },
    /// File-level restore from a restore point's disk (GPT/MBR; NTFS, ext2/3/4) without
    /// restoring the disk: only the chunks needed are read.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Instant recovery: serve a restore point's disk over NBD until Ctrl-C, so a
    /// hypervisor or qemu-img can use it before any restore (only the chunks read are
    /// fetched). Read-only unless --overlay is given: writes then go to that new file,
    /// never to the repository.
    Nbd {
        /// Restore point (id prefix or `latest`).
        restore_point: String,
        /// The disk item (needed when the restore point holds several disks).
        #[arg(long)]
        item: Option<String>,
        /// Address to listen on (keep it on loopback or a trusted network: NBD has no
        /// authentication).
        #[arg(long, default_value = "127.0.0.1:10809")]
        listen: String,
        /// Export name (nbd://ADDRESS/NAME).
        #[arg(long, default_value = "disk")]
        export: String,
        /// Make the export writable, keeping every write in this new file (outside the
        /// repository; never an existing file).
        #[arg(long, value_name = "FILE")]
        overlay: Option<PathBuf>,
        /// Filters for `latest`.
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// The local catalog (a cache of restore points and job history).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Protection policies: what to back up, how often, what to keep (GFS). Run them from a
    /// timer with `rehydra policy run --due`.
    #[command(subcommand)]
    Policy(crate::policy::PolicyCommand),
    /// The always-on service: runs the due policies of the repository given with -r on
    /// their schedule, with nobody logged in (Linux: the systemd unit in packaging/systemd;
    /// Windows: `rehydra service install`). Only one runs per catalog. A failed policy
    /// waits 5 minutes, then twice that after each failure in a row, up to 6 h (kept in
    /// the catalog). Runs handed to it (`policy run NAME --service`, the app's Run now)
    /// go first. On Ctrl-C, SIGTERM or a Windows service stop it cancels the job in
    /// progress (nothing half-written is committed; the policy stays due) and stops.
    #[command(args_conflicts_with_subcommands = true)]
    Service {
        /// Register or remove the Windows service; cancel a run handed to the service.
        #[command(subcommand)]
        action: Option<crate::service::ServiceAction>,
        #[command(flatten)]
        run: crate::service::RunArgs,
        /// Say whether a service runs (its process and repository) and list the runs
        /// handed to it, then exit (`--json`: `{"service": …|null, "requests": […]}`).
        #[arg(long)]
        status: bool,
        /// Run under the Windows service control manager (what `service install`
        /// registers; not for a console).
        #[arg(long, hide = true)]
        windows_service: bool,
    },
    /// For operators of the machine's service who cannot open its catalog (members of the
    /// group it was started with, `service --operators GROUP`): its policies and results,
    /// run one now, cancel such a run. Nothing else: no settings, restores or files.
    #[command(subcommand)]
    Operator(crate::operator::OperatorCommand),
    /// Workload plugins: install, trust, grant capabilities, run their verbs.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// How Rehydra signs in to Azure (for plugins that call Azure, such as rehydration,
    /// Key Vault and AKS): status, login, endpoint, extra audiences. Plugins never see a
    /// token; the host adds it to their requests.
    #[command(subcommand)]
    Azure(crate::azure::AzureCommand),
    /// Shell completions on standard output, e.g. `rehydra completions bash >
    /// /etc/bash_completion.d/rehydra`, or for PowerShell `rehydra completions powershell |
    /// Out-String | Invoke-Expression` in your profile.
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Manual pages (roff) for rehydra and every subcommand, written into a folder, e.g.
    /// `rehydra man --dir /usr/local/share/man/man1`. Pages named rehydra*.1 there are
    /// replaced; nothing else is touched.
    Man {
        /// The folder (created when missing).
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

/// Which disk and partition of a restore point.
#[derive(clap::Args, Debug, Clone)]
pub struct DiskAt {
    /// Restore point (id prefix or `latest`).
    pub restore_point: String,
    /// The disk item (needed when the restore point holds several disks).
    #[arg(long)]
    pub item: Option<String>,
    /// Partition number as `files partitions` shows it (needed when several hold a
    /// file system).
    #[arg(long)]
    pub partition: Option<u32>,
    /// Filters for `latest`.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `files`.
#[derive(Subcommand, Debug)]
pub enum FilesCommand {
    /// Partitions of the disk and the file system in each.
    Partitions(DiskAt),
    /// List a folder inside the disk (default: its root).
    Ls {
        /// Where.
        #[command(flatten)]
        at: DiskAt,
        /// Folder or file inside the volume, `/`-separated.
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// Copy a file or folder out of the disk into a folder, with modification times.
    Restore {
        /// Where.
        #[command(flatten)]
        at: DiskAt,
        /// File or folder inside the volume, `/`-separated.
        #[arg(long)]
        path: String,
        /// Folder to restore into (created).
        #[arg(long)]
        target: PathBuf,
        /// Replace files that exist (they are replaced only once the new copy is complete).
        #[arg(long)]
        overwrite: bool,
    },
}

/// `plugins`.
#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Installed plugins (and why any cannot load).
    List,
    /// A plugin's manifest, requested capabilities with reasons, and grants.
    Info {
        /// Plugin id.
        id: String,
    },
    /// Verify a plugin file (signature, publisher, contract) and install it for this user.
    Install {
        /// The `.wasm` file.
        file: PathBuf,
        /// Replace an installed plugin with the same id (upgrade).
        #[arg(long)]
        replace: bool,
        /// With --replace: also install a lower version than the installed one.
        #[arg(long, requires = "replace")]
        allow_downgrade: bool,
    },
    /// Grant capabilities: engine, files:<folder>, files-write:<folder>, http:<host>, command:<program>[@<target>], ldap:<directory>, sql:<instance>.
    ///
    /// `files:` also takes a prefix of object storage to read, never write:
    /// `files:s3://BUCKET/PREFIX` or `files:azure://CONTAINER/PREFIX` (Velero's backups in
    /// their bucket). The host reads those objects with the credentials of repositories
    /// in object storage (the `AWS_*` or `AZURE_STORAGE_*` variables, else your Azure
    /// sign-in); the plugin never sees them.
    Grant {
        /// Plugin id.
        id: String,
        /// Grants.
        #[arg(required = true)]
        grants: Vec<String>,
    },
    /// Revoke grants (all of the plugin's when none are given).
    Revoke {
        /// Plugin id.
        id: String,
        /// Grants.
        grants: Vec<String>,
    },
    /// Trust a publisher's signing key (ed25519 public key, 64 hex digits).
    Trust {
        /// Publisher name as in plugin manifests.
        publisher: String,
        /// Public key.
        key: String,
    },
    /// Stop trusting a publisher's key.
    Untrust {
        /// Publisher.
        publisher: String,
        /// Public key.
        key: String,
    },
    /// Trusted publisher keys.
    Trusted,
    /// Machines other than this one where granted commands run (over SSH).
    #[command(subcommand)]
    Target(crate::plugins::TargetCommand),
    /// LDAP directories plugins may be granted (`ldap:<name>`), and the account the
    /// host binds with.
    #[command(subcommand)]
    Directory(crate::directory::DirectoryCommand),
    /// SQL Server instances plugins may be granted (`sql:<name>`), and the login the
    /// host signs in with.
    #[command(subcommand)]
    SqlServer(crate::sql_server::SqlServerCommand),
    /// Kubernetes clusters whose API servers the host reaches with a kubeconfig's CA and
    /// credentials (client certificate or token).
    #[command(subcommand)]
    KubeCluster(crate::kube_cluster::KubeClusterCommand),
    /// Capability decisions: denials and sensitive uses.
    Audit {
        /// Only this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// How many (newest first).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Create a signing key for publishing plugins (prints its public key).
    Keygen {
        /// Key file to create (never overwritten).
        file: PathBuf,
    },
    /// Embed a manifest into a component and sign it: the file you ship.
    Pack {
        /// Component built for wasm32-wasip2.
        component: PathBuf,
        /// Manifest (TOML).
        #[arg(long)]
        manifest: PathBuf,
        /// Signing key file (omit for an unsigned developer build).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a verb of a plugin.
    Run {
        /// Plugin id.
        id: String,
        /// The verb.
        #[command(subcommand)]
        verb: VerbCommand,
    },
}

/// Plugin verbs.
#[derive(Subcommand, Debug)]
pub enum VerbCommand {
    /// Who the plugin is.
    Describe,
    /// Inventory: the assets the plugin finds.
    Discover {
        /// Settings as name=value (e.g. root=/srv), checked against what the plugin
        /// declares (`rehydra plugins info ID` lists them).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        settings: Vec<String>,
    },
    /// Discover, then assess risks of what was found.
    Assess {
        /// Settings as name=value, checked against the plugin's declarations.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        settings: Vec<String>,
    },
    /// Back up one asset into the repository (-r).
    Backup {
        /// Asset id (as discover reports it).
        #[arg(long)]
        asset: String,
        /// Options as name=value, checked against the plugin's declarations.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Tags.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Plan, check, then restore a restore point the plugin made.
    Restore {
        /// Restore point (id prefix or `latest`).
        restore_point: String,
        /// Target (a folder for file-like workloads).
        #[arg(long)]
        target: String,
        /// Options as name=value (overwrite=true …), checked against the plugin's
        /// declarations.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        options: Vec<String>,
        /// Only compute and check the plan.
        #[arg(long)]
        plan_only: bool,
    },
    /// Prove a restore point can come back: read-only, unless given restore settings, with
    /// which the plugin may stage items where its grants allow (sql-server: staging= runs
    /// RESTORE VERIFYONLY on each backup).
    Verify {
        /// Restore point (id prefix or `latest`).
        restore_point: String,
        /// The plugin's restore settings as name=value, for a check of the restore it
        /// would do (sql-server: server=, staging=, path-map= run RESTORE VERIFYONLY).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        options: Vec<String>,
    },
}

/// `init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Target pack size in MiB (16 suits object storage).
    #[arg(long, default_value_t = 16)]
    pub pack_size_mib: u32,
    /// Average chunk size in KiB (min is a quarter, max four times).
    #[arg(long, default_value_t = 16)]
    pub chunk_avg_kib: u32,
    /// zstd level for chunks (0 turns compression off).
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
    /// Label for the first key slot.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Argon2id memory in KiB for the key slot (advanced).
    #[arg(long, default_value_t = 65536, hide = true)]
    pub kdf_memory_kib: u32,
    /// Argon2id iterations for the key slot (advanced).
    #[arg(long, default_value_t = 3, hide = true)]
    pub kdf_iterations: u32,
}

/// `backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Folders or files to back up (each becomes one item).
    pub paths: Vec<PathBuf>,
    /// Back up a file as a raw byte stream (no file metadata beyond its own).
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Back up a disk image: VHDX and VHD are read natively (only allocated blocks, by
    /// virtual offset; restores give the raw virtual disk), anything else as a raw image.
    #[arg(long = "disk", value_name = "PATH")]
    pub disks: Vec<PathBuf>,
    /// Changed-range hints for the --disk image: a file of `offset length` lines (bytes,
    /// decimal or 0x-hex; `#` comments), e.g. from Hyper-V Resilient Change Tracking. Only
    /// those ranges are read; the rest is taken from the restore point given by
    /// --changed-since. A wrong list gives a wrong restore point: use it only with a
    /// change tracker's output.
    #[arg(long, value_name = "FILE", requires = "changed_since")]
    pub changed_ranges: Option<PathBuf>,
    /// The restore point the changed ranges count from (id prefix or `latest`).
    #[arg(long, value_name = "RESTORE_POINT", requires = "changed_ranges")]
    pub changed_since: Option<String>,
    /// Format of --disk images: auto, vhdx, vhd, qcow2, or raw (raw keeps a container file byte for byte).
    #[arg(long, default_value = "auto", value_parser = ["auto", "vhdx", "vhd", "qcow2", "raw"])]
    pub disk_format: String,
    /// Read a stream from standard input.
    #[arg(long)]
    pub stdin: bool,
    /// Item name for --stdin.
    #[arg(long, default_value = "stdin")]
    pub stdin_name: String,
    /// Asset id the restore point belongs to (default: the first source's absolute path).
    #[arg(long)]
    pub asset: Option<String>,
    /// Workload name (default: files, or disk for --disk).
    #[arg(long)]
    pub workload: Option<String>,
    /// Tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Read every file of a folder again. Without it, a file whose size, modification
    /// time, change time and inode match the previous restore point of the same asset
    /// is taken from there unread (as restic does).
    #[arg(long)]
    pub read_all: bool,
    // folders: what they leave out
    #[command(flatten)]
    pub exclude: ExcludeArgs,
}

/// What a folder backup leaves out (`backup`, `policy add`).
#[derive(Args, Debug, Clone, Default)]
pub struct ExcludeArgs {
    /// Leave out what matches PATTERN (repeatable): without `/` a name at any depth
    /// (`*.tmp`, `node_modules`), with `/` a path from the folder (`logs/*.log`,
    /// `build/**/cache`); `*` stays in one name, `**` spans folders.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Patterns from FILE, one per line (blank lines and `#` comments skipped;
    /// repeatable).
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Do not enter other file systems mounted inside the folder (their mount points are
    /// kept, empty). Unix only.
    #[arg(long)]
    pub one_file_system: bool,
}

impl ExcludeArgs {
    /// Every pattern: the flags', then each file's lines.
    ///
    /// # Errors
    /// An exclude file that cannot be read, named.
    pub fn patterns(&self) -> anyhow::Result<Vec<String>> {
        let mut out = self.exclude.clone();
        for f in &self.exclude_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("exclude file {}: {e}", f.display()))?;
            out.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        Ok(out)
    }
}

/// Filters for listings and `latest`.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this asset.
    #[arg(long)]
    pub asset: Option<String>,
    /// Only this workload.
    #[arg(long)]
    pub workload: Option<String>,
    /// Only with this tag (repeatable: all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only from this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only newer than this (RFC 3339 time, or a duration like 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only older than this.
    #[arg(long)]
    pub until: Option<String>,
}

/// `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Restore point: id prefix or `latest`.
    pub restore_point: String,
    /// Where to restore (a folder; a file path for a single stream or disk).
    #[arg(short, long)]
    pub target: PathBuf,
    /// Only this item of the restore point.
    #[arg(long)]
    pub item: Option<String>,
    /// Only this path inside a folder item (and what is below it).
    #[arg(long)]
    pub path: Option<String>,
    /// Replace existing files (they are replaced only once the new copy is complete).
    #[arg(long)]
    pub overwrite: bool,
    /// Write a disk item into an existing file or block device (at least the disk's
    /// size) instead of a new file, e.g. a VM's disk LUN; needs --overwrite too. Unlike a
    /// file restore this cannot be atomic: an interrupted run leaves the target partly
    /// written.
    #[arg(long)]
    pub in_place: bool,
    /// Show the plan (what would be written, conflicts) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format for disk items: raw (default), vhdx (a dynamic VHDX) or vhd (a
    /// dynamic VHD); in both containers only written blocks are allocated.
    #[arg(long, default_value = "raw", value_parser = ["raw", "vhdx", "vhd"])]
    pub to_format: String,
    /// Filters for `latest`.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Decrypt and hash every chunk.
    #[arg(long)]
    pub read_data: bool,
    /// Read only subset n/m of the packs (for example 1/7 on Mondays).
    #[arg(long, value_name = "n/m")]
    pub read_data_subset: Option<String>,
    /// Check the storage at -r instead of a repository: whether a folder, share, container
    /// or bucket behaves as a repository needs (atomic, never-overwriting writes; exact
    /// ranged reads; listing; deletes), in a scratch folder or prefix below it that is
    /// removed afterwards. Needs no password; run it before trusting a NAS or an
    /// S3-compatible appliance with backups.
    #[arg(long, conflicts_with_all = ["read_data", "read_data_subset"])]
    pub storage: bool,
}

/// `forget`.
#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Keep the newest n.
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest of each of the last n hours.
    #[arg(long, default_value_t = 0)]
    pub keep_hourly: u32,
    /// … days.
    #[arg(long, default_value_t = 0)]
    pub keep_daily: u32,
    /// … ISO weeks.
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: u32,
    /// … months.
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: u32,
    /// … years.
    #[arg(long, default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep everything younger than this (for example 7d, 36h).
    #[arg(long)]
    pub keep_within: Option<String>,
    /// Only show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Run prune afterwards.
    #[arg(long)]
    pub prune: bool,
    /// Which restore points the policy applies to.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `copy`.
#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Restore points to copy (id prefixes or `latest`); none: every one the filter matches.
    pub restore_points: Vec<String>,
    /// The target repository (created beforehand with `rehydra init`).
    #[arg(long = "to", value_name = "REPO", env = "REHYDRA_COPY_REPOSITORY")]
    pub to: String,
    /// The target's password, from this file (first line); else REHYDRA_COPY_PASSWORD,
    /// else a prompt.
    #[arg(long, env = "REHYDRA_COPY_PASSWORD_FILE", value_name = "FILE")]
    pub to_password_file: Option<PathBuf>,
    /// Which restore points (also limits `latest`).
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Only show what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Repack a pack when more than this percentage of it is unused.
    #[arg(long, default_value_t = 30)]
    pub repack_threshold: u32,
}

/// `key`.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List key slots.
    List,
    /// Add a password (new key slot). The new password comes from REHYDRA_NEW_PASSWORD, --new-password-file or a prompt.
    Add {
        /// Label.
        #[arg(long, default_value = "")]
        label: String,
        /// File holding the new password.
        #[arg(long)]
        new_password_file: Option<PathBuf>,
    },
    /// Remove a key slot by id prefix.
    Remove {
        /// Slot id prefix.
        id: String,
    },
    /// Keep the password in the OS keychain (Windows Credential Manager, macOS Keychain,
    /// the Secret Service on Linux) after checking it opens the repository. Commands on
    /// this repository (-r as given here) with no other password source then use it.
    Remember,
    /// Remove the password `key remember` kept for this repository.
    Forget,
    /// Change the password of the slot in use (and the one kept in the keychain).
    Passwd {
        /// File holding the new password.
        #[arg(long)]
        new_password_file: Option<PathBuf>,
    },
}

/// `catalog`.
#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Recreate this repository's catalog rows from the repository.
    Rebuild,
    /// Restore points as the catalog holds them.
    Show,
    /// The repositories used with this catalog, the most recent first, with the
    /// location each was last opened from (no repository is opened).
    Repositories,
    /// Job history (backups, restores, copies, checks, prunes), newest first, with ids.
    Runs {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// The log of one job run: what the engine and the plugin reported (warnings, plugin
    /// log lines such as the ARM requests of a rehydration, errors).
    Log {
        /// The run's id, as `catalog runs` shows it.
        run: i64,
    },
}
