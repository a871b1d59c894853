// Every call to the Rust side goes through this module: one typed function per Tauri
// command, errors normalised to {code, message}.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";

// Every type the Rust side sends or receives is generated from the Rust types
// (src-tauri/src/bindings.rs, ts-rs): no hand copies here.
import type {
  ApiError,
  Assessment,
  AssessmentOptions,
  Asset,
  AzureSettings,
  AzureStatus,
  BackupOutcome,
  Changed,
  CheckReport,
  Directory,
  SqlServer,
  KubeCluster,
  KubeClusterView,
  ExportEntry,
  IdentitySetting,
  InstantExport,
  InventoryAsset,
  JobRun,
  KnownRepository,
  Overview,
  PlanView,
  Planned,
  PluginDetails,
  PluginEntry,
  Policy,
  PolicyRun,
  PolicyStatus,
  Progress,
  RepoInfo,
  RestoreChoice,
  RestorePoint,
  RunView,
  ServiceInfo,
  UpdateView,
  ServiceRequest,
  StorageCheck,
  Target,
  TargetKept,
  VerifyView,
} from "./bindings";

export type * from "./bindings";

/** Any error as {code, message}. */
export function asError(e: unknown): ApiError {
  if (e && typeof e === "object" && "message" in e) {
    const o = e as ApiError;
    return { code: o.code ?? "io", message: o.message, hint: o.hint };
  }
  return { code: "io", message: String(e) };
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

export const api = {
  defaultLocation: () => call<string>("default_location"),
  repoCreate: (location: string, password: string, keepPassword: boolean) =>
    call<RepoInfo>("repo_create", { location, password, keepPassword }),
  repoConnect: (location: string, password: string, keepPassword: boolean) =>
    call<RepoInfo>("repo_connect", { location, password, keepPassword }),
  repoRecent: () => call<KnownRepository[]>("repo_recent"),
  reposOpen: () => call<string[]>("repos_open"),
  repoSwitch: (location: string) => call<void>("repo_switch", { location }),
  repoClose: (location: string) => call<boolean>("repo_close", { location }),
  repoStatus: () => call<RepoInfo | null>("repo_status"),
  repoCheck: (readData: boolean) =>
    call<CheckReport>("repo_check", { readData }),
  storageCheck: (location: string) => call<StorageCheck>("storage_check", { location }),
  restore_points: (asset?: string) => call<RestorePoint[]>("restore_points", { asset: asset ?? null }),
  inventory: (rpoHours: number) => call<InventoryAsset[]>("inventory", { rpoHours }),
  discover: (plugin: string, settings: [string, string][]) => call<Asset[]>("discover", { plugin, settings }),
  backupFolder: (path: string, tags: string[], exclude: string[], job: string, onProgress: (p: Progress) => void) =>
    call<BackupOutcome>("backup_folder", { path, tags, exclude, job, onProgress: channel(onProgress) }),
  pluginBackup: (plugin: string, asset: string, options: [string, string][], job: string, onProgress: (p: Progress) => void) =>
    call<BackupOutcome>("plugin_backup", { plugin, asset, options, job, onProgress: channel(onProgress) }),
  policies: () => call<PolicyStatus[]>("policies_list"),
  policySave: (policy: Policy) => call<void>("policy_save", { policy }),
  policyRemove: (name: string) => call<boolean>("policy_remove", { name }),
  serviceStatus: () => call<ServiceInfo | null>("service_status"),
  serviceHandOver: (name: string) => call<ServiceRequest>("service_hand_over", { name }),
  serviceRequests: () => call<ServiceRequest[]>("service_requests"),
  serviceCancel: (id: number) => call<ServiceRequest>("service_cancel", { id }),
  operatorOverview: () => call<Overview | null>("operator_overview"),
  operatorRun: (policy: string) => call<ServiceRequest>("operator_run", { policy }),
  operatorCancel: (id: number) => call<ServiceRequest>("operator_cancel", { id }),
  updateCheck: () => call<UpdateView>("update_check"),
  updateInstall: (version: string) => call<string>("update_install", { version }),
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
  verify: (point: string, options: [string, string][]) =>
    call<VerifyView>("verify_restore_point", { restorePoint: point, options }),
  instantStart: (choice: RestoreChoice, job: string) => call<InstantExport>("instant_start", { choice, job }),
  instantList: () => call<ExportEntry[]>("instant_list"),
  plugins: () => call<PluginEntry[]>("plugins_list"),
  pluginInfo: (id: string) => call<PluginDetails>("plugin_info", { id }),
  pluginGrant: (id: string, specs: string[]) => call<string[]>("plugin_grant", { id, specs }),
  pluginRevoke: (id: string, specs: string[]) => call<number>("plugin_revoke", { id, specs }),
  directories: () => call<Directory[]>("directories_list"),
  directoryAdd: (directory: Directory, check: boolean) => call<string>("directory_add", { directory, check }),
  directoryCheck: (name: string) => call<string>("directory_check", { name }),
  directoryRemove: (name: string) => call<boolean>("directory_remove", { name }),
  sqlServers: () => call<SqlServer[]>("sql_servers_list"),
  sqlServerAdd: (server: SqlServer, check: boolean) => call<string>("sql_server_add", { server, check }),
  sqlServerCheck: (name: string) => call<string>("sql_server_check", { name }),
  sqlServerRemove: (name: string) => call<boolean>("sql_server_remove", { name }),
  kubeClusters: () => call<KubeClusterView[]>("kube_clusters_list"),
  kubeClusterAdd: (cluster: KubeCluster) => call<KubeClusterView>("kube_cluster_add", { cluster }),
  kubeClusterRemove: (name: string) => call<boolean>("kube_cluster_remove", { name }),
  targets: () => call<Target[]>("targets_list"),
  targetAdd: (target: Target) => call<TargetKept>("target_add", { target }),
  targetRefresh: (name: string, pinNew: boolean) => call<TargetKept>("target_refresh", { name, pinNew }),
  targetRemove: (name: string) => call<boolean>("target_remove", { name }),
  azureStatus: () => call<AzureStatus>("azure_status"),
  azureSettings: () => call<AzureSettings>("azure_settings"),
  azureSetIdentity: (identity: IdentitySetting) => call<void>("azure_set_identity", { identity }),
  assessmentPlan: (options: AssessmentOptions) => call<Planned[]>("assessment_plan", { options }),
  assessmentRun: (options: AssessmentOptions, join: boolean, logo: string | null) =>
    call<Assessment>("assessment_run", { options, join, logo }),
  assessmentSave: (assessment: Assessment, dir: string, pdf: boolean, overwrite: boolean) =>
    call<string[]>("assessment_save", { assessment, dir, pdf, overwrite }),
};

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
