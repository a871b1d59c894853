// Every call to the Rust side goes through this module: one typed function per Tauri
// command, errors normalised to {code, message}.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";

export interface ApiError {
  code: string;
  message: string;
}

export interface RepoInfo {
  location: string;
  id: string;
  restorePoints: number;
}

export interface Item {
  name: string;
  kind: string;
  size: number;
}

export interface RestorePoint {
  id: string;
  short_id: string;
  time: string;
  workload: string;
  asset: string;
  hostname: string;
  plugin_id: string;
  plugin_version: string;
  consistency: string;
  tags: string[];
  items: Item[];
  bytes: number;
  new_bytes: number;
  stored_bytes: number;
  seconds: number;
  unchanged_files: number;
  unchanged_bytes: number;
}

export interface Risk {
  code: string;
  title: string;
}

export interface InventoryAsset {
  id: string;
  name: string;
  kind: string;
  parent: string | null;
  plugin: string;
  flags: string[];
  restore_points: number;
  last_backup: string | null;
  age_hours: number | null;
  status: "protected" | "stale" | "unprotected" | "container";
  risks: Risk[];
}

export interface Progress {
  phase: string;
  done: number;
  total: number;
  bytesPerSec: number;
  etaSeconds: number | null;
  message: string;
  finished: boolean;
}

export interface Step {
  id: string;
  title: string;
  detail: string;
  depends_on: string[];
}

export interface PlanView {
  kind: "engine" | "plugin";
  plugin: string | null;
  plan: { steps: Step[]; warnings: string[]; blockers: string[] };
}

export interface RunView {
  bytes: number;
  files: number;
  notes: string[];
}

/** An instant-recovery export (a restore point's disk served over NBD). */
export interface InstantExport {
  url: string;
  address: string;
  item: string;
  size: number;
  overlay: string | null;
}

export interface ExportEntry {
  job: string;
  restore_point: string;
  export: InstantExport;
  running: boolean;
  error: string | null;
}

export interface RestoreChoice {
  restore_point: string;
  path?: string;
  target: string;
  overwrite: boolean;
  options: [string, string][];
  inside_disk?: boolean;
  instant?: boolean;
  item?: string;
  overlay?: string;
}

/** rehydra_catalog::JobStatus */
export type JobStatus = "running" | "succeeded" | "succeeded-with-warnings" | "failed" | "cancelled" | "unknown";

export interface JobRun {
  id: number;
  kind: string;
  started: string;
  finished: string | null;
  status: JobStatus;
  message: string;
  restore_point_id: string | null;
  bytes: number;
}

export interface PluginEntry {
  id: string;
  path: string;
  version: string | null;
  publisher: string | null;
  workloads: string[];
  signer: { kind: string; publisher?: string; key?: string } | null;
  error: string | null;
}

export interface CapabilityView {
  kind: string;
  allows: string;
  scope: string | null;
  reason: string;
  granted: string[];
}

export interface PluginDetails {
  entry: PluginEntry;
  manifest: { id: string; name: string; version: string; publisher: string; description: string; contract: string };
  capabilities: CapabilityView[];
  grants: string[];
}

export interface Asset {
  kind: string;
  id: string;
  name: string;
  parent: string | null;
  flags: string[];
}

export type What =
  | { kind: "folder"; path: string }
  | { kind: "plugin"; plugin: string; asset: string; options: [string, string][] };

export interface Keep {
  last: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export interface Policy {
  name: string;
  what: What;
  every_hours: number;
  keep: Keep;
  repository: string;
  tags: string[];
  copy_to?: CopyTarget | null;
}

/** A second repository a policy copies every restore point to. */
export interface CopyTarget {
  repository: string;
  password_file?: string | null;
}

export interface CopyReport {
  repository: string;
  copied: string[];
  forgotten: string[];
  error: string | null;
}

export interface PolicyStatus {
  policy: Policy;
  last_run: string | null;
  next_due: string;
  due: boolean;
}

export interface PolicyRun {
  restore_point: RestorePoint;
  forgotten: string[];
  warnings: string[];
  copy: CopyReport | null;
}

export interface VerifyView {
  ok: boolean;
  findings: string[];
}

export interface BackupOutcome {
  restore_point: RestorePoint;
  warnings: string[];
}

/** Any error as {code, message}. */
export function asError(e: unknown): ApiError {
  if (e && typeof e === "object" && "message" in e) {
    const o = e as { code?: string; message: string };
    return { code: o.code ?? "Io", message: o.message };
  }
  return { code: "Io", message: String(e) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asError(e);
  }
}

function channel(onProgress: (p: Progress) => void): Channel<Progress> {
  const ch = new Channel<Progress>();
  ch.onmessage = onProgress;
  return ch;
}

export const newJobId = () => `job-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

/** Where a service principal's secret is read from (never the secret itself). */
export type SecretSetting = { file: string } | { env: string } | { keychain: string };

/** The Azure identity jobs sign in with (kept in the catalog). */
export type IdentitySetting =
  | { kind: "auto" }
  | { kind: "azure-cli" }
  | { kind: "azure-developer-cli" }
  | { kind: "service-principal"; tenant: string; client_id: string; secret: SecretSetting }
  | { kind: "certificate"; tenant: string; client_id: string; certificate: string }
  | { kind: "managed-identity"; client_id?: string };

export interface AzureSettings {
  identity: IdentitySetting;
  arm_endpoint: string;
  audiences: [string, string][];
}

export interface AzureStatus {
  configured: string;
  source: string | null;
  tenant: string | null;
  user: string | null;
  app_id: string | null;
  object_id: string | null;
  expires: string | null;
  attempts: { source: string; failure: string | null }[];
  error: string | null;
  arm_endpoint: string;
  subscriptions: { id: string; name: string; state: string; tenant: string | null }[];
  subscriptions_error: string | null;
  audiences: [string, string][];
}

export const api = {
  defaultLocation: () => call<string>("default_location"),
  repoCreate: (location: string, password: string) => call<RepoInfo>("repo_create", { location, password }),
  repoConnect: (location: string, password: string) => call<RepoInfo>("repo_connect", { location, password }),
  repoStatus: () => call<RepoInfo | null>("repo_status"),
  repoCheck: (readData: boolean) =>
    call<{ errors: string[]; warnings: string[]; restore_points: number; packs: number }>("repo_check", { readData }),
  restore_points: (asset?: string) => call<RestorePoint[]>("restore_points", { asset: asset ?? null }),
  inventory: (rpoHours: number) => call<InventoryAsset[]>("inventory", { rpoHours }),
  discover: (plugin: string, settings: [string, string][]) => call<Asset[]>("discover", { plugin, settings }),
  backupFolder: (path: string, tags: string[], job: string, onProgress: (p: Progress) => void) =>
    call<BackupOutcome>("backup_folder", { path, tags, job, onProgress: channel(onProgress) }),
  pluginBackup: (plugin: string, asset: string, options: [string, string][], job: string, onProgress: (p: Progress) => void) =>
    call<BackupOutcome>("plugin_backup", { plugin, asset, options, job, onProgress: channel(onProgress) }),
  policies: () => call<PolicyStatus[]>("policies_list"),
  policySave: (policy: Policy) => call<void>("policy_save", { policy }),
  policyRemove: (name: string) => call<boolean>("policy_remove", { name }),
  copyTargetUnlock: (location: string, password: string) => call<void>("copy_target_unlock", { location, password }),
  copyTargetsUnlocked: () => call<string[]>("copy_targets_unlocked"),
  policyRun: (name: string, job: string, onProgress: (p: Progress) => void) =>
    call<PolicyRun>("policy_run", { name, job, onProgress: channel(onProgress) }),
  cancelJob: (job: string) => call<boolean>("cancel_job", { job }),
  jobHistory: (limit: number) => call<JobRun[]>("job_history", { limit }),
  jobLog: (run: number) => call<string[]>("job_log", { run }),
  restorePlan: (choice: RestoreChoice) => call<PlanView>("restore_plan", { choice }),
  restoreRun: (choice: RestoreChoice, job: string, onProgress: (p: Progress) => void) =>
    call<RunView>("restore_run", { choice, job, onProgress: channel(onProgress) }),
  verify: (point: string) => call<VerifyView>("verify_restore_point", { restorePoint: point }),
  instantStart: (choice: RestoreChoice, job: string) => call<InstantExport>("instant_start", { choice, job }),
  instantList: () => call<ExportEntry[]>("instant_list"),
  plugins: () => call<PluginEntry[]>("plugins_list"),
  pluginInfo: (id: string) => call<PluginDetails>("plugin_info", { id }),
  pluginGrant: (id: string, specs: string[]) => call<string[]>("plugin_grant", { id, specs }),
  pluginRevoke: (id: string, specs: string[]) => call<number>("plugin_revoke", { id, specs }),
  azureStatus: () => call<AzureStatus>("azure_status"),
  azureSettings: () => call<AzureSettings>("azure_settings"),
  azureSetIdentity: (identity: IdentitySetting) => call<void>("azure_set_identity", { identity }),
};

/** What the `state-changed` event says changed. */
export type Changed = "repository" | "restore-points" | "jobs" | "policies" | "exports" | "plugins";

/** Call `cb` whenever the app reports that one of `whats` changed; returns the unsubscribe. */
export function onStateChanged(whats: Changed[], cb: (what: Changed) => void): () => void {
  let unlisten: (() => void) | null = null;
  let stopped = false;
  listen<{ what: Changed }>("state-changed", (e) => {
    if (whats.includes(e.payload.what)) cb(e.payload.what);
  })
    .then((u) => (stopped ? u() : (unlisten = u)))
    .catch(() => {});
  return () => {
    stopped = true;
    unlisten?.();
  };
}
