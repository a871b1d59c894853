// Generated from the Rust types by src-tauri/src/bindings.rs (ts-rs): do not edit.
// Regenerate with `UPDATE_BINDINGS=1 cargo test -p rehydra-app bindings`.

export type Code = "wrong-password" | "not-a-repository" | "unsupported-version" | "corrupt" | "missing" | "target-exists" | "locked" | "invalid-input" | "no-space" | "io" | "cancelled" | "plugin-rejected" | "plugin-failed" | "blocked";

export type Hint = "check" | "check-read-data" | "location-or-init" | "password" | "list-key-slots" | "list-restore-points" | "one-item" | "overwrite" | "overwrite-in-place" | "sources";

export type ApiError = { 
/**
 * The API's stable code (`wrong-password`, `not-a-repository`, …), the same
 * spelling the CLI's `--json` errors use.
 */
code: Code, 
/**
 * What happened.
 */
message: string, 
/**
 * What the user can do about it; the UI says it in its own words.
 */
hint?: Hint, };

export type RepoInfo = { location: string, id: string, restorePoints: number, 
/**
 * What became of "keep the password in the OS keychain", when it was asked for.
 */
keychain: string | null, };

export type Changed = "repository" | "restore-points" | "jobs" | "policies" | "exports" | "plugins";

export type StateChanged = { 
/**
 * What changed.
 */
what: Changed, };

export type VerifyView = { ok: boolean, findings: Array<string>, };

export type Progress = { phase: string, done: number, total: number, bytesPerSec: number, etaSeconds: number | null, message: string, finished: boolean, };

export type ExportEntry = { 
/**
 * Job id (`cancel_job` stops it).
 */
job: string, 
/**
 * The restore point it serves.
 */
restore_point: string, 
/**
 * What is served where.
 */
export: InstantExport, 
/**
 * Still serving.
 */
running: boolean, 
/**
 * Why it stopped, when it failed.
 */
error: string | null, };

export type CheckReport = { 
/**
 * Problems that make data unrestorable.
 */
errors: Array<string>, 
/**
 * Problems that lose nothing (leftovers, duplicates).
 */
warnings: Array<string>, 
/**
 * Restore points that cannot be fully restored.
 */
damaged_restore_points: Array<string>, 
/**
 * Restore points checked.
 */
restore_points: number, 
/**
 * Packs listed.
 */
packs: number, 
/**
 * Packs whose data was read.
 */
packs_read: number, 
/**
 * Chunks verified by reading.
 */
chunks_read: number, };

export type StorageCheck = { 
/**
 * The location checked.
 */
location: string, 
/**
 * The scratch folder or prefix the checks ran in (removed afterwards).
 */
scratch: string, 
/**
 * The rules of the storage contract it broke; empty when it can hold a repository.
 */
broken: Array<string>, };

export type JobStatus = "running" | "succeeded" | "succeeded-with-warnings" | "failed" | "cancelled" | "unknown";

export type JobRun = { 
/**
 * Row id.
 */
id: number, 
/**
 * Repository id.
 */
repository_id: string | null, 
/**
 * Kind.
 */
kind: string, 
/**
 * Start time.
 */
started: string, 
/**
 * End time.
 */
finished: string | null, 
/**
 * Status.
 */
status: JobStatus, 
/**
 * Message.
 */
message: string, 
/**
 * Restore point made or used.
 */
restore_point_id: string | null, 
/**
 * Bytes processed.
 */
bytes: number, };

export type KnownRepository = { 
/**
 * Repository id (from its config).
 */
id: string, 
/**
 * The location it was last opened from.
 */
location: string, 
/**
 * First used (RFC 3339).
 */
first_seen: string, 
/**
 * Last used (RFC 3339).
 */
last_seen: string, };

export type Property = { 
/**
 * Name.
 */
name: string, 
/**
 * Value.
 */
value: string, };

export type Asset = { 
/**
 * Kind within the workload.
 */
kind: string, 
/**
 * Stable id.
 */
id: string, 
/**
 * Display name.
 */
name: string, 
/**
 * Parent asset id.
 */
parent: string | null, 
/**
 * Properties.
 */
properties: Array<Property>, 
/**
 * Protection-relevant flags (`trusted-launch`, `arc-managed` …).
 */
flags: Array<string>, };

export type Step = { 
/**
 * Id.
 */
id: string, 
/**
 * Title.
 */
title: string, 
/**
 * Detail.
 */
detail: string, 
/**
 * Prerequisite step ids.
 */
depends_on: Array<string>, };

export type RestorePlan = { 
/**
 * Steps in order.
 */
steps: Array<Step>, 
/**
 * Warnings.
 */
warnings: Array<string>, 
/**
 * Reasons it cannot proceed.
 */
blockers: Array<string>, };

export type CapabilityKind = "engine" | "files" | "files-write" | "http" | "command" | "ldap" | "sql";

export type CapabilityRequest = { 
/**
 * Kind.
 */
kind: CapabilityKind, 
/**
 * Scope asked for (`*` = whatever the admin chooses); ignored for `engine`.
 */
scope: string | null, 
/**
 * Why, in words an admin understands.
 */
reason: string, };

export type Limits = { 
/**
 * Linear memory per call (all memories of all its instances together), MiB.
 */
memory_mib: number, 
/**
 * Wall time per call, seconds: the plugin's code, its WASI waits and its host calls
 * (commands, HTTP, files, denied calls); engine bulk work (ingest, restore-item,
 * item reads and writes) counts only 50 ms per call.
 */
timeout_secs: number, };

export type SettingType = "string" | "bool" | "integer" | "choice" | "time";

export type SettingVerb = "discover" | "backup" | "restore";

export type SettingDecl = { 
/**
 * Name as given (`node`, `path-map`): a-z, 0-9 and `-`.
 */
name: string, 
/**
 * What it holds.
 */
type: SettingType, 
/**
 * The calls it is given to.
 */
verbs: Array<SettingVerb>, 
/**
 * What it means, for the form and for errors.
 */
help: string, 
/**
 * A call without it is refused.
 */
required: boolean, 
/**
 * Given to the plugin when the call does not set it.
 */
default?: string, 
/**
 * The values a `choice` takes.
 */
choices: Array<string>, 
/**
 * Entered masked in the app's forms. (Anything that grants access belongs with the
 * host, as a capability the admin grants, not in a setting.)
 */
secret: boolean, 
/**
 * For a restore setting: another restore setting (a string) that looks its values
 * up. A plan given `<found-by>=<text>` lists the values that match as steps with
 * ids `pick:<value>`, each step's title saying what it is (the restore refuses
 * it); the app offers them as a search beside this field.
 */
"found-by"?: string, };

export type Manifest = { 
/**
 * Plugin id: lowercase letters, digits and `-`.
 */
id: string, 
/**
 * Display name.
 */
name: string, 
/**
 * Plugin version.
 */
version: string, 
/**
 * Publisher name; its signing keys are trusted with `rehydra plugins trust`.
 */
publisher: string, 
/**
 * What it does.
 */
description: string, 
/**
 * Contract version the plugin was written against (`0.1.5`; 0.1.0 to 0.1.4 plugins run too).
 */
contract: string, 
/**
 * Workloads it protects.
 */
workloads: Array<string>, 
/**
 * Capabilities it asks for.
 */
capabilities: Array<CapabilityRequest>, 
/**
 * Resource limits it asks for (the host caps them).
 */
limits: Limits, 
/**
 * The settings its calls read (`[[settings]]`): the app's forms and the host's checks.
 */
settings: Array<SettingDecl>, };

export type Signer = { "kind": "trusted", 
/**
 * Publisher.
 */
publisher: string, 
/**
 * Key (hex).
 */
key: string, } | { "kind": "untrusted", 
/**
 * Key (hex).
 */
key: string, } | { "kind": "unsigned" };

export type LoadInfo = { 
/**
 * Compiled code came from the cache.
 */
cached: boolean, 
/**
 * Wall time of the load, milliseconds.
 */
millis: number, };

export type Item = { 
/**
 * Name.
 */
name: string, 
/**
 * Kind (`tree`, `stream`, `disk`, `document`).
 */
kind: string, 
/**
 * Logical bytes.
 */
size: number, };

export type RestorePoint = { 
/**
 * Full id.
 */
id: string, 
/**
 * First 8 hex digits.
 */
short_id: string, 
/**
 * Time.
 */
time: string, 
/**
 * Workload.
 */
workload: string, 
/**
 * Asset.
 */
asset: string, 
/**
 * Host.
 */
hostname: string, 
/**
 * Plugin.
 */
plugin_id: string, 
/**
 * Plugin version.
 */
plugin_version: string, 
/**
 * Consistency.
 */
consistency: string, 
/**
 * Tags.
 */
tags: Array<string>, 
/**
 * Parent id.
 */
parent: string | null, 
/**
 * Items.
 */
items: Array<Item>, 
/**
 * Logical bytes.
 */
bytes: number, 
/**
 * New plaintext bytes added.
 */
new_bytes: number, 
/**
 * Bytes written to packs.
 */
stored_bytes: number, 
/**
 * Seconds the backup took.
 */
seconds: number, 
/**
 * Files found unchanged since the previous restore point and not read again.
 */
unchanged_files: number, 
/**
 * Their bytes (part of `bytes`).
 */
unchanged_bytes: number, 
/**
 * Files and folders left out by exclude patterns.
 */
excluded: number, 
/**
 * For a copy: the source restore point's id (`rehydra copy`, policy copy targets).
 */
copied_from: string | null, 
/**
 * For a copy: the source repository's id.
 */
copied_from_repository: string | null, };

export type BackupOutcome = { 
/**
 * The new restore point.
 */
restore_point: RestorePoint, 
/**
 * Files that could not be read, and other warnings.
 */
warnings: Array<string>, };

export type Risk = { 
/**
 * Stable code: `tvm-key-missing`, `needs-rehydration`, `never-test-restored`, `rpo-missed`, `unprotected`.
 */
code: string, 
/**
 * What the admin reads.
 */
title: string, };

export type InventoryAsset = { 
/**
 * Asset id (as the plugin reports it, or the restore points' asset).
 */
id: string, 
/**
 * Display name.
 */
name: string, 
/**
 * `cluster`, `node`, `vm`, `folder` … (`backup` for an asset known only from restore points).
 */
kind: string, 
/**
 * Id of the containing asset.
 */
parent: string | null, 
/**
 * The plugin that discovered it (empty when only restore points know it).
 */
plugin: string, 
/**
 * Protection flags from discovery.
 */
flags: Array<string>, 
/**
 * Restore points of this asset made by the plugin that found it (or, for an asset only
 * the repository knows, any).
 */
restore_points: number, 
/**
 * Time of the newest one.
 */
last_backup: string | null, 
/**
 * Hours since then.
 */
age_hours: number | null, 
/**
 * `protected` (within the RPO), `stale` (older), `unprotected` (none), or
 * `container` for clusters and nodes.
 */
status: string, 
/**
 * Risk badges.
 */
risks: Array<Risk>, };

export type What = { "kind": "folder", 
/**
 * Path.
 */
path: string, 
/**
 * Exclude patterns (`*.tmp`, `logs/*.log`; see the README).
 */
exclude?: Array<string>, 
/**
 * Do not enter other file systems mounted below it.
 */
one_file_system?: boolean, } | { "kind": "plugin", 
/**
 * Plugin id.
 */
plugin: string, 
/**
 * Asset id.
 */
asset: string, 
/**
 * Backup options (`name=value`).
 */
options: Array<[string, string]>, } | { "kind": "discovered", 
/**
 * Plugin id.
 */
plugin: string, 
/**
 * Asset kind (`vault` …) as discover reports it.
 */
asset_kind: string, 
/**
 * Discover settings (`name=value`).
 */
discover: Array<[string, string]>, 
/**
 * Backup options (`name=value`), the same for every asset.
 */
options: Array<[string, string]>, };

export type Keep = { 
/**
 * The newest N.
 */
last: number, 
/**
 * One per day for N days.
 */
daily: number, 
/**
 * One per week for N weeks.
 */
weekly: number, 
/**
 * One per month for N months.
 */
monthly: number, 
/**
 * One per year for N years.
 */
yearly: number, };

export type Policy = { 
/**
 * Unique name.
 */
name: string, 
/**
 * What to back up.
 */
what: What, 
/**
 * Run when the last successful run is older than this many hours (when `at` is
 * empty).
 */
every_hours: number, 
/**
 * Run at these times of day (`HH:MM`, this machine's time zone) instead.
 */
at?: Array<string>, 
/**
 * …on these days of the week only (`mon` … `sun`); empty = every day.
 */
days?: Array<string>, 
/**
 * Start only inside this backup window (`HH:MM-HH:MM`, may cross midnight): a run
 * due outside it waits for it to open.
 */
window?: string | null, 
/**
 * Run when this cron expression says instead (five fields: minute hour
 * day-of-month month day-of-week, this machine's time zone; `0 2 * * 1-5`).
 */
cron?: string | null, 
/**
 * Retention.
 */
keep: Keep, 
/**
 * The repository location it backs up into.
 */
repository: string, 
/**
 * Extra tags for its restore points.
 */
tags: Array<string>, 
/**
 * A second repository every restore point is copied to.
 */
copy_to?: CopyTarget | null, 
/**
 * Who is told about its runs, and when.
 */
notify?: Notify | null, };

export type CopyTarget = { 
/**
 * Repository location (created beforehand with `rehydra init`).
 */
repository: string, 
/**
 * A file holding its password (first line), read at each run. Without it the
 * password must be given to the run (the app keeps it in memory; the CLI takes
 * `--copy-password-file` or REHYDRA_COPY_PASSWORD).
 */
password_file?: string | null, };

export type NotifyWhen = "failure" | "warnings" | "always";

export type SmtpSecurity = "starttls" | "tls" | "none";

export type Email = { 
/**
 * SMTP server, `host` or `host:port`.
 */
server: string, 
/**
 * Connection security.
 */
security: SmtpSecurity, 
/**
 * Sender address.
 */
from: string, 
/**
 * Recipients.
 */
to: Array<string>, 
/**
 * User name for SMTP authentication.
 */
username?: string | null, 
/**
 * A file whose first line is the SMTP password, read at each send.
 */
password_file?: string | null, 
/**
 * A PEM file of extra certificate authorities to trust for this server (a company
 * CA); the system's are trusted as well.
 */
ca_file?: string | null, };

export type Notify = { 
/**
 * When the webhook and the mail are sent.
 */
when: NotifyWhen, 
/**
 * `http(s)://…`: the run's [`RunEvent`] is POSTed there as JSON.
 */
webhook?: string | null, 
/**
 * `http(s)://…`: GET after every run, with `/fail` appended when it failed.
 */
ping?: string | null, 
/**
 * Mail.
 */
email?: Email | null, };

export type ServiceInfo = { 
/**
 * Its process id.
 */
pid: number, 
/**
 * The repository whose due policies it runs.
 */
repository: string, 
/**
 * Whether it takes runs handed to it ([`requests`]); a service of an older version
 * does not, and a run handed to it would wait forever.
 */
takes_requests: boolean, };

export type OperatorPolicy = { 
/**
 * Its name.
 */
name: string, 
/**
 * What it backs up, in a few words.
 */
what: string, 
/**
 * Its schedule in words.
 */
schedule: string, 
/**
 * Its last successful run.
 */
last_run: string | null, 
/**
 * When it is due next.
 */
next_due: string, 
/**
 * Failed runs since the last success.
 */
failures: number, };

export type Overview = { 
/**
 * The service's process.
 */
pid: number, 
/**
 * The repository whose policies it runs.
 */
repository: string, 
/**
 * Those policies.
 */
policies: Array<OperatorPolicy>, 
/**
 * Runs handed to it: those not ended yet and the ten newest others, newest first.
 */
requests: Array<ServiceRequest>, };

export type Available = { 
/**
 * Its version.
 */
version: string, 
/**
 * Its release notes.
 */
notes: string | null, 
/**
 * When it was published (RFC 3339).
 */
date: string | null, };

export type UpdateView = { 
/**
 * This build's version.
 */
current: string, 
/**
 * The manifest's address, when the build has one.
 */
source: string | null, 
/**
 * The id of the key installers must be signed with.
 */
key_id: string | null, 
/**
 * A newer version, when the manifest names one.
 */
available: Available | null, 
/**
 * Why this copy cannot install an update itself, when it cannot.
 */
not_installable: string | null, };

export type ServiceRequestState = "waiting" | "running" | "stopping" | "succeeded" | "failed" | "cancelled" | "unknown";

export type ServiceRequest = { 
/**
 * Its number.
 */
id: number, 
/**
 * The policy to run.
 */
policy: string, 
/**
 * When it was asked (RFC 3339).
 */
asked: string, 
/**
 * Who asked.
 */
asked_by: string, 
/**
 * How it stands.
 */
state: ServiceRequestState, 
/**
 * When the service took it.
 */
started: string | null, 
/**
 * When it ended.
 */
finished: string | null, 
/**
 * The running job's last progress line.
 */
progress: string | null, 
/**
 * How it ended.
 */
message: string | null, };

export type CopyReport = { 
/**
 * The target repository.
 */
repository: string, 
/**
 * Restore points copied now (ids in the source); earlier copies are not listed.
 */
copied: Array<string>, 
/**
 * Restore points the retention removed in the target.
 */
forgotten: Array<string>, 
/**
 * Why the copy failed (the backup itself stands).
 */
error: string | null, };

export type PolicyStatus = { 
/**
 * The policy.
 */
policy: Policy, 
/**
 * Last successful run.
 */
last_run: string | null, 
/**
 * When it is due next (now if never run).
 */
next_due: string, 
/**
 * Due now.
 */
due: boolean, 
/**
 * Its schedule in words (`every 24 h`, `at 02:00 on mon, fri, within 22:00-06:00`,
 * `cron 0 2 * * 1-5`).
 */
schedule: string, 
/**
 * The next runs as the schedule has them: `next_due`, then the two after it.
 */
upcoming: Array<string>, 
/**
 * Failed runs since the last success.
 */
failures: number, 
/**
 * After a failure: no attempt before this time (the pause doubles with each failure
 * in a row, up to six hours).
 */
retry_after: string | null, };

export type PolicyRun = { 
/**
 * The restore points made (one per asset; a policy of discovered assets makes one
 * for each asset that was backed up).
 */
restore_points: Array<RestorePoint>, 
/**
 * Restore points the retention removed (ids).
 */
forgotten: Array<string>, 
/**
 * Warnings of the backup.
 */
warnings: Array<string>, 
/**
 * The copy step, when the policy has a copy target.
 */
copy: CopyReport | null, 
/**
 * Notifications that could not be sent (the run itself stands).
 */
notify_errors: Array<string>, };

export type RestoreChoice = { 
/**
 * Restore point (id or prefix).
 */
restore_point: string, 
/**
 * Only this path inside the restore point (engine restores).
 */
path: string | null, 
/**
 * Target folder or file (a plugin may read it differently: a cluster path …).
 */
target: string, 
/**
 * Replace what exists (engine restores; a plugin restore replaces through the
 * plugin's own `overwrite` setting, in `options`, so one control decides).
 */
overwrite: boolean, 
/**
 * Plugin options (`name=value`), for restore points made by a plugin.
 */
options: Array<[string, string]>, 
/**
 * Copy `path` out of the file system inside the restore point's disk (file-level
 * restore) instead of restoring the disk itself.
 */
inside_disk: boolean, 
/**
 * Instant recovery: serve the restore point's disk over NBD (`target` is then the
 * address to listen on) instead of restoring it.
 */
instant: boolean, 
/**
 * The disk item, when the restore point holds several (instant recovery).
 */
item: string | null, 
/**
 * Instant recovery: make the export writable, keeping writes in this new file.
 */
overlay: string | null, };

export type PlanView = { 
/**
 * `plugin` (the plugin's own plan) or `engine`.
 */
kind: string, 
/**
 * The plugin that plans and runs it, if any.
 */
plugin: string | null, 
/**
 * The plan.
 */
plan: RestorePlan, };

export type RunView = { 
/**
 * Bytes written.
 */
bytes: number, 
/**
 * Files written (engine restores).
 */
files: number, 
/**
 * Warnings and plugin log lines.
 */
notes: Array<string>, };

export type InstantExport = { 
/**
 * `nbd://ADDRESS/disk`.
 */
url: string, 
/**
 * The address actually bound (a port of 0 is resolved).
 */
address: string, 
/**
 * The disk item served.
 */
item: string, 
/**
 * Its size in bytes.
 */
size: number, 
/**
 * Where writes go, when writable.
 */
overlay: string | null, };

export type PluginEntry = { 
/**
 * Plugin id (file stem when it cannot be loaded).
 */
id: string, 
/**
 * File.
 */
path: string, 
/**
 * Version, if loadable.
 */
version: string | null, 
/**
 * Publisher, if loadable.
 */
publisher: string | null, 
/**
 * Workloads.
 */
workloads: Array<string>, 
/**
 * Who vouches for it.
 */
signer: Signer | null, 
/**
 * Why it cannot be loaded, if so.
 */
error: string | null, };

export type PluginDetails = { 
/**
 * Summary.
 */
entry: PluginEntry, 
/**
 * Manifest.
 */
manifest: Manifest, 
/**
 * Requested capabilities with the admin-facing description and whether granted.
 */
capabilities: Array<CapabilityView>, 
/**
 * Grants in force.
 */
grants: Array<string>, 
/**
 * Load time.
 */
load: LoadInfo, 
/**
 * The limits its calls run under: what the manifest asks, capped by the admin.
 */
limits: Limits, };

export type CapabilityView = { 
/**
 * Kind.
 */
kind: string, 
/**
 * What it allows.
 */
allows: string, 
/**
 * Scope asked for.
 */
scope: string | null, 
/**
 * The plugin's reason.
 */
reason: string, 
/**
 * Granted scopes of this kind.
 */
granted: Array<string>, };

export type PasswordSource = { "file": string } | { "env": string } | { "keychain": { 
/**
 * Service name.
 */
service: string, 
/**
 * User name.
 */
user: string, } };

export type Directory = { 
/**
 * The name plugins and grants use: `host` or `host:port` (lower case).
 */
name: string, 
/**
 * `host:port` to connect to, when not the name itself (default port 636 for LDAPS,
 * 389 for StartTLS).
 */
address?: string | null, 
/**
 * StartTLS on the LDAP port instead of LDAPS.
 */
starttls: boolean, 
/**
 * Kerberos (SASL GSSAPI) as the account this process runs as, instead of a password:
 * the name must then be the DC's host name, as in its service principal
 * `ldap/<name>`, and the certificate is checked against it.
 */
kerberos: boolean, 
/**
 * The account to bind as: a DN or `user@domain`; with Kerberos the only principal
 * (`user@REALM`) to bind as, or empty for this process's default one.
 */
bind: string, 
/**
 * Where its password is kept (none with Kerberos).
 */
password?: PasswordSource | null, 
/**
 * PEM file of the CA certificates to trust for this directory (default: the
 * system's roots).
 */
"ca-file"?: string | null, };

export type SqlLoginKind = "sql" | "windows" | "integrated" | "entra";

export type SqlServer = { 
/**
 * The name plugins and grants use: `host` or `host:port` (lower case).
 */
name: string, 
/**
 * `host:port` to connect to, when not the name itself (default port 1433).
 */
address?: string | null, 
/**
 * The kind of account.
 */
kind: SqlLoginKind, 
/**
 * The login (`sa`-like name, or `DOMAIN\user`); when integrated, empty or the only
 * Windows login (`DOMAIN\user`) the instance may sign the account in as.
 */
login: string, 
/**
 * Where its password is kept (none when integrated).
 */
password?: PasswordSource | null, 
/**
 * PEM file of the CA certificates to trust for this instance (default: the
 * system's roots).
 */
"ca-file"?: string | null, 
/**
 * A command target (`rehydra plugins target add`), or `local` for this machine's
 * PowerShell 7, that runs the batches with PowerShell's SQL client, signed in as the
 * account commands run as there (integrated only); none: the host connects.
 */
via?: string | null, 
/**
 * With [`SqlLoginKind::Entra`], the Azure SQL audience its token is for (one of
 * `azure::SQL_AUDIENCES`; none: the public cloud's, `https://database.windows.net/`).
 */
audience?: string | null, };

export type KubeCluster = { 
/**
 * The admin's name for it (letters, digits, `-_.`).
 */
name: string, 
/**
 * The kubeconfig file.
 */
kubeconfig: string, 
/**
 * Its context to use (default its `current-context`).
 */
context?: string | null, 
/**
 * The API server the kubeconfig named when the cluster was added (set when it is
 * kept): should the kubeconfig stop reading, requests to that server fail with the
 * reason instead of going out without its CA and credentials.
 */
server?: string | null, };

export type KubeClusterView = { 
/**
 * The configuration.
 */
cluster: KubeCluster, 
/**
 * The API server (`kube=` of the plugins), when the kubeconfig reads.
 */
server: string | null, 
/**
 * How the host signs in: `client certificate`, `token`, or `Entra (rehydra azure
 * audience)`.
 */
sign_in: string | null, 
/**
 * Why the kubeconfig does not read, if it does not.
 */
problem: string | null, };

export type RemoteShell = "windows" | "posix";

export type Target = { 
/**
 * Name plugins use (`hv01`); `local` is reserved for this machine.
 */
name: string, 
/**
 * SSH destination, `[user@]host`.
 */
ssh: string, 
/**
 * SSH port (default 22).
 */
port?: number | null, 
/**
 * Private key used for this target (default: the user's SSH configuration).
 */
identity?: string | null, 
/**
 * Known-hosts file to check the target's host key against (default: the user's).
 */
known_hosts?: string | null, 
/**
 * The target's shell.
 */
shell: RemoteShell, 
/**
 * PowerShell executable on the target (`pwsh`, or `powershell` for Windows
 * PowerShell 5.1).
 */
powershell: string, 
/**
 * This is one node of a failover cluster: its `nodes` are reached as `<name>/<node>`
 * with the user written in `ssh` and the same port, key, known-hosts file, shell and
 * PowerShell.
 */
cluster?: boolean, 
/**
 * A cluster's nodes, pinned when the admin added or refreshed it (what
 * `Get-ClusterNode` listed then, or the names the admin gave).
 */
nodes?: Array<string>, };

export type TargetKept = { 
/**
 * The target as it is now configured.
 */
target: Target, 
/**
 * Nodes the cluster lists that were not pinned before (every node of a new cluster
 * target).
 */
added: Array<string>, 
/**
 * Nodes pinned before that the cluster no longer lists.
 */
removed: Array<string>, 
/**
 * Lines of the cluster's answer that are not host names (never pinned).
 */
left_out: Array<string>, 
/**
 * Whether the nodes found are pinned now. A refresh that finds new nodes pins them
 * only when told to: whoever may run PowerShell on the cluster can make its answer
 * name any host, so the admin looks at the new names first.
 */
pinned: boolean, };

export type IdentitySetting = { "kind": "auto" } | { "kind": "azure-cli" } | { "kind": "azure-developer-cli" } | { "kind": "service-principal", 
/**
 * Directory (tenant) id or domain.
 */
tenant: string, 
/**
 * Application (client) id.
 */
client_id: string, 
/**
 * Where the secret is read from.
 */
secret: SecretSetting, } | { "kind": "certificate", 
/**
 * Directory (tenant) id or domain.
 */
tenant: string, 
/**
 * Application (client) id.
 */
client_id: string, 
/**
 * The PEM file.
 */
certificate: string, } | { "kind": "managed-identity", 
/**
 * A user-assigned identity's client id (IMDS only).
 */
client_id?: string | null, };

export type SecretSetting = { "file": string } | { "env": string } | { "keychain": string };

export type AzureSettings = { 
/**
 * The identity.
 */
identity: IdentitySetting, 
/**
 * The ARM endpoint (`https://management.azure.com` unless set).
 */
arm_endpoint: string, 
/**
 * Extra hosts and the token scope each gets (`host` or `*.suffix`).
 */
audiences: Array<[string, string]>, 
/**
 * Tenants other than the identity's own that a service's bearer challenge may send
 * it to (`*`: any); none unless the admin allows them.
 */
tenants: Array<string>, };

export type Attempt = { 
/**
 * Source name.
 */
source: string, 
/**
 * Why it failed.
 */
failure: string | null, };

export type Subscription = { 
/**
 * Subscription id.
 */
id: string, 
/**
 * Display name.
 */
name: string, 
/**
 * State (`Enabled`, `Disabled`, …).
 */
state: string, 
/**
 * Its tenant.
 */
tenant: string | null, };

export type AzureStatus = { 
/**
 * The identity as configured, in words.
 */
configured: string, 
/**
 * The source that gave a token.
 */
source: string | null, 
/**
 * Tenant of the token.
 */
tenant: string | null, 
/**
 * User (UPN) of the token, for a person.
 */
user: string | null, 
/**
 * Application id of the token, for a service principal or managed identity.
 */
app_id: string | null, 
/**
 * Object id of the signed-in principal.
 */
object_id: string | null, 
/**
 * When the current token expires (RFC 3339).
 */
expires: string | null, 
/**
 * Every source tried, in order.
 */
attempts: Array<Attempt>, 
/**
 * Why no token could be had.
 */
error: string | null, 
/**
 * The ARM endpoint.
 */
arm_endpoint: string, 
/**
 * Subscriptions the identity sees.
 */
subscriptions: Array<Subscription>, 
/**
 * Why they could not be listed.
 */
subscriptions_error: string | null, 
/**
 * Extra audiences set by the admin.
 */
audiences: Array<[string, string]>, 
/**
 * Other tenants a bearer challenge may send the identity to (`*`: any).
 */
tenants: Array<string>, };

export type PluginScope = { 
/**
 * Plugin id.
 */
plugin: string, 
/**
 * Discovery settings (`subscriptions`, `nodes` …), checked against what it declares.
 */
settings: Array<Property>, };

export type Logo = { 
/**
 * `image/png` or `image/jpeg`.
 */
mime: string, 
/**
 * The image, base64.
 */
base64: string, };

export type Labels = { 
/**
 * The customer.
 */
customer: string, 
/**
 * The consultant (and firm).
 */
consultant: string, 
/**
 * What was assessed, in the consultant's words.
 */
scope: string, 
/**
 * The consultant's logo, embedded.
 */
logo: Logo | null, };

export type Thresholds = { 
/**
 * Recovery point objective: a newest restore point older than this misses it.
 */
rpo_hours: number, 
/**
 * A repository without a successful restore in this many days is flagged.
 */
restore_test_days: number, 
/**
 * Retention the sizing estimates repository growth for.
 */
retention_days: number, 
/**
 * Daily change assumed where the repository cannot measure it, in percent.
 */
daily_change_percent: number, };

export type AssessmentOptions = { 
/**
 * Plugins to sweep; empty: every installed plugin.
 */
plugins: Array<string>, 
/**
 * Discovery settings of the plugins swept (by plugin; one entry per plugin).
 */
settings: Array<PluginScope>, 
/**
 * Judged by.
 */
thresholds: Thresholds, 
/**
 * Names on the report.
 */
labels: Labels, };

export type Planned = { 
/**
 * Plugin id.
 */
plugin: string, 
/**
 * Its version, when it loads.
 */
version: string | null, 
/**
 * Whether it will be swept.
 */
runs: boolean, 
/**
 * Why not, or what to know.
 */
note: string, 
/**
 * Settings it gets (the values of those its manifest calls secret hidden).
 */
settings: Array<Property>, 
/**
 * What it may reach (its grants), with the verbs that run: `discover`, `assess`.
 */
grants: Array<string>, };

export type Swept = { 
/**
 * Plugin id.
 */
plugin: string, 
/**
 * `swept`, `failed` or `skipped`.
 */
status: string, 
/**
 * Why it failed or was skipped.
 */
detail: string, 
/**
 * Assets it found.
 */
assets: number, 
/**
 * Findings of its own rules.
 */
findings: number, };

export type RepositoryFacts = { 
/**
 * Repository id (short).
 */
id: string, 
/**
 * Repository id (whole).
 */
full_id: string, 
/**
 * Where it is, as the admin named it.
 */
location: string, 
/**
 * `local folder`, `SMB share`, `Azure Blob`, `S3`.
 */
kind: string, 
/**
 * Restore points in it.
 */
restore_points: number, 
/**
 * Logical bytes over stored bytes, as measured.
 */
reduction_ratio: number, 
/**
 * Bytes stored.
 */
stored_bytes: number, 
/**
 * Newest successful restore (a test or a real one) from it, per the catalog.
 */
last_restore: string | null, 
/**
 * Policies that copy to a second repository.
 */
copying_policies: number, 
/**
 * Policies in all.
 */
policies: number, };

export type AssetRow = { 
/**
 * Id as its plugin reports it.
 */
id: string, 
/**
 * Display name.
 */
name: string, 
/**
 * `vm`, `vault`, `namespace` …
 */
kind: string, 
/**
 * Containing asset.
 */
parent: string | null, 
/**
 * The top of its tree (cluster, subscription …), by name.
 */
group: string, 
/**
 * The plugin that found it.
 */
plugin: string, 
/**
 * Protection flags.
 */
flags: Array<string>, 
/**
 * `protected`, `stale`, `unprotected`, `container`, or `unknown` (no repository joined).
 */
status: string, 
/**
 * Restore points of it.
 */
restore_points: number, 
/**
 * The newest one.
 */
last_backup: string | null, 
/**
 * Data a first full backup reads, in MiB (the plugin's `size-mib`), when known.
 */
size_mib: number | null, 
/**
 * What its plugin reports about a cluster (OS, registration, nodes, volumes, pools);
 * empty for other kinds.
 */
facts: Array<Property>, };

export type FindingRow = { 
/**
 * `<rule>` or `<rule>:<asset id>`: stable between runs.
 */
id: string, 
/**
 * Rule id (`hyperv.tvm-key`, `rehydra.unprotected` …).
 */
rule: string, 
/**
 * `critical`, `high`, `medium`, `low` or `info`.
 */
severity: string, 
/**
 * The plugin whose rule it is, or `rehydra`.
 */
source: string, 
/**
 * Asset id.
 */
asset: string | null, 
/**
 * Asset name.
 */
asset_name: string | null, 
/**
 * What is wrong.
 */
title: string, 
/**
 * What shows it.
 */
evidence: string, 
/**
 * What to do.
 */
recommendation: string, };

export type Action = { 
/**
 * Rule.
 */
rule: string, 
/**
 * Its severity.
 */
severity: string, 
/**
 * What is wrong.
 */
title: string, 
/**
 * What to do.
 */
recommendation: string, 
/**
 * Assets it concerns (0 for the estate as a whole).
 */
assets: number, };

export type Coverage = { 
/**
 * Within the RPO.
 */
protected: number, 
/**
 * Backed up, but older than the RPO.
 */
stale: number, 
/**
 * No restore point.
 */
unprotected: number, 
/**
 * Not judged: no repository was joined.
 */
unknown: number, };

export type Summary = { 
/**
 * 0 to 100 ([`rules::score`]).
 */
score: number, 
/**
 * A to F.
 */
grade: string, 
/**
 * Findings per severity.
 */
by_severity: { [key in string]: number }, 
/**
 * Assets per protection state (containers not counted).
 */
coverage: Coverage, 
/**
 * What to do first: at most five.
 */
top_actions: Array<Action>, };

export type Sizing = { 
/**
 * Data of every asset whose size is known.
 */
total_mib: number, 
/**
 * Of which in assets with a restore point (protected or stale).
 */
protected_mib: number, 
/**
 * Of which in assets without one (or not judged).
 */
unprotected_mib: number, 
/**
 * Assets whose plugin reports no size.
 */
unsized_assets: number, 
/**
 * Logical over stored bytes used for the estimates.
 */
reduction_ratio: number, 
/**
 * Whether that ratio was measured in a repository.
 */
reduction_measured: boolean, 
/**
 * Daily change used, in percent of the data.
 */
daily_change_percent: number, 
/**
 * Whether that was measured (new data per day in the repository's last 7 days).
 */
change_measured: boolean, 
/**
 * Stored size of a first full backup of everything sized.
 */
first_full_mib: number, 
/**
 * Stored size of a day's change.
 */
daily_change_mib: number, 
/**
 * Retention the growth is for.
 */
retention_days: number, 
/**
 * The repository after that retention: first full plus a day's change per day kept.
 */
repository_mib: number, 
/**
 * What the estimates rest on, in words.
 */
basis: Array<string>, };

export type Assessment = { 
/**
 * [`FORMAT`].
 */
format: number, 
/**
 * When it was made.
 */
generated: string, 
/**
 * The Rehydra that made it.
 */
rehydra_version: string, 
/**
 * Names on the report.
 */
labels: Labels, 
/**
 * Judged by.
 */
thresholds: Thresholds, 
/**
 * Repositories joined (none: protection was not judged).
 */
repositories: Array<RepositoryFacts>, 
/**
 * How each plugin's sweep went.
 */
sweep: Array<Swept>, 
/**
 * The estate.
 */
assets: Array<AssetRow>, 
/**
 * Every finding, worst first.
 */
findings: Array<FindingRow>, 
/**
 * Score, coverage, top actions.
 */
summary: Summary, 
/**
 * Capacity and estimates.
 */
sizing: Sizing, };
