// End-to-end test of the desktop app: the real binary under Xvfb, driven through
// tauri-driver and WebKitWebDriver. Creates a repository, backs up a folder, sees it in
// the inventory, restores it through the wizard and compares the files, verifies, and
// sees a plan refuse an unsafe restore (over existing files without consent). Writes a
// screenshot of each screen to $REHYDRA_E2E_OUT (default <target>/e2e-screenshots).
//
// Run: xvfb-run -a node ui/e2e/app.e2e.mjs   (needs the app built: cargo build -p rehydra-app)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import http from "node:http";
import { execFileSync, spawn } from "node:child_process";
import { Session, startDriver } from "./webdriver.mjs";
import { activeDirectory } from "./active-directory.mjs";
import { sqlServer } from "./sql-server.mjs";
import { handOver, operators } from "./service.mjs";
import { updateServer, updates } from "./updates.mjs";
const target = process.env.CARGO_TARGET_DIR ?? path.resolve("target");
const app = process.env.REHYDRA_APP ?? path.join(target, "debug", "rehydra-app");
const out = process.env.REHYDRA_E2E_OUT ?? path.join(target, "e2e-screenshots");
fs.mkdirSync(out, { recursive: true });
if (!fs.existsSync(app)) throw new Error(`${app} is not built: cargo build -p rehydra-app`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rehydra-e2e-"));
const home = path.join(tmp, "home");
fs.mkdirSync(home);
// the data to protect
const data = path.join(tmp, "data");
fs.mkdirSync(path.join(data, "sub"), { recursive: true });
fs.writeFileSync(path.join(data, "hello.txt"), "hello from the e2e test\n");
fs.writeFileSync(path.join(data, "sub", "blob.bin"), crypto.randomBytes(3 << 20));

// a stand-in Hyper-V node (the CLI tests' fake_node.py as `pwsh`) with one Trusted
// launch VM whose disk is a real VHDX; PATH leads the app's plugin commands to it
const here = path.dirname(new URL(import.meta.url).pathname);
const nodeDir = path.join(tmp, "node");
fs.mkdirSync(nodeDir);
fs.copyFileSync(path.join(here, "../../crates/cli/tests/cli/support/fake_node.py"), path.join(nodeDir, "pwsh"));
fs.chmodSync(path.join(nodeDir, "pwsh"), 0o755);
const TVM = "7c6b5a49-3827-4165-9e0d-1f2a3b4c5d6e";
const vmPath = "C:\\ClusterStorage\\Volume1\\tvm01";
fs.writeFileSync(path.join(nodeDir, "state.json"), JSON.stringify({
  vms: [{
    Name: "tvm01", Id: TVM.toUpperCase(), State: "Running", Generation: 2, ProcessorCount: 2, MemoryStartup: 4294967296,
    ComputerName: "HV01", OwnerNode: "HV01", IsClustered: true, Path: vmPath, ConfigurationLocation: vmPath,
    HardDrives: [{ Path: `${vmPath}\\Virtual Hard Disks\\tvm01.vhdx`, ControllerType: 1, ControllerNumber: 0, ControllerLocation: 0 }],
    NetworkAdapters: [{ Name: "Network Adapter", MacAddress: "00155D0A0C02", SwitchName: "ConvergedSwitch(compute)", VlanId: 0 }],
    Checkpoints: 0, TpmEnabled: true,
  }],
  switches: ["ConvergedSwitch(compute)"], keys: [TVM],
}));
const csv = path.join(tmp, "csv");
fs.mkdirSync(path.join(csv, "Volume1/tvm01/Virtual Hard Disks"), { recursive: true });
execFileSync("qemu-img", ["create", "-q", "-f", "vhdx", path.join(csv, "Volume1/tvm01/Virtual Hard Disks/tvm01.vhdx"), "16M"]);
const csvB = path.join(tmp, "csvB");
fs.mkdirSync(csvB);

const env = { ...process.env, PATH: `${nodeDir}:${process.env.PATH}`, HOME: home, XDG_DATA_HOME: path.join(home, ".local/share"), XDG_CACHE_HOME: path.join(home, ".cache"), REHYDRA_SERVICE_SOCKET: path.join(tmp, "run", "operators.sock") };
delete env.REHYDRA_CATALOG;
delete env.REHYDRA_PLUGIN_PATH;
// a plugin installed for this user with the CLI (trust, install, grant), as an admin would
const cli = process.env.REHYDRA_CLI ?? path.join(target, "debug", "rehydra");
const plugins = process.env.REHYDRA_TEST_PLUGINS ?? path.join(target, "plugins");
const runCli = (...args) => execFileSync(cli, args, { env, stdio: ["ignore", "pipe", "inherit"] });
runCli("plugins", "trust", "rehydra-dev", fs.readFileSync(path.join(plugins, "..", "rehydra-dev", "publisher.pub"), "utf8").trim());
runCli("plugins", "install", path.join(plugins, "example-files.wasm"));
runCli("plugins", "grant", "example-files", "engine", `files:${tmp}`);
runCli("plugins", "install", path.join(plugins, "hyperv-vm.wasm"));
runCli("plugins", "grant", "hyperv-vm", "engine", "command:powershell@local", `files:${csv}`, `files-write:${csvB}`);

// a stand-in Key Vault and ARM (the CLI tests' keyvault_standin.py) with one vault of an
// Azure Local deployment, and a stand-in `az` that signs the admin in: tokens name their
// audience, as real ones do, and the stand-in vault checks it
const SUB = "6b2f9d1e-0000-4000-8000-000000000001";
const kvDir = path.join(tmp, "kv");
fs.mkdirSync(kvDir);
const kvVer = (id, value, created, exp) => ({ id: id.padEnd(32, "0"), value, attributes: { enabled: true, created, updated: created, ...(exp ? { exp } : {}) }, tags: {} });
const soon = Math.floor(Date.now() / 1000) + 10 * 86400;
fs.writeFileSync(path.join(kvDir, "state.json"), JSON.stringify({
  tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47",
  vaults: { "hci-kv": {
    subscription: SUB, resourceGroup: "rg-hci", location: "westus", geography: "US", softDelete: true, purgeProtection: true,
    secrets: {
      LocalAdminCredential: { versions: [kvVer("a1", "pw-1", 1690000000), kvVer("a2", "pw-2", 1690000100, soon)] },
      "app-conn": { versions: [kvVer("b1", "Server=sql;Password=x", 1690000200)] },
    },
  } },
}));
const kvProc = spawn("python3", [path.join(here, "../../crates/cli/tests/cli/support/keyvault_standin.py"), kvDir], { stdio: ["ignore", "pipe", "inherit"] });
const kvUrls = await new Promise((resolve, reject) => {
  kvProc.stdout.once("data", (d) => resolve(JSON.parse(String(d).split("\n")[0])));
  kvProc.once("exit", (c) => reject(new Error(`the Key Vault stand-in stopped (${c})`)));
});
const VAULT = `/subscriptions/${SUB}/resourceGroups/rg-hci/providers/Microsoft.KeyVault/vaults/hci-kv`;
fs.writeFileSync(path.join(nodeDir, "az"), `#!/bin/sh
case "$*" in *get-access-token*) ;; *) exit 2 ;; esac
tok=test-token; case "$*" in *vault.azure.net*) tok=vault-test-token ;; *6dae42f8-4368-4678-94ff-3960e28e3630*) tok=aks-test-token ;; esac
exp=$(( $(date +%s) + 3600 ))
printf '{"accessToken": "%s", "expiresOn": "%s", "expires_on": %s, "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47", "tokenType": "Bearer"}\n' "$tok" "$(date -d "@$exp" '+%Y-%m-%d %H:%M:%S.000000')" "$exp"
`);
fs.chmodSync(path.join(nodeDir, "az"), 0o755);
// two stand-in Kubernetes API servers (the CLI tests' kube_standin.py): cluster A with a
// shop namespace, cluster B empty but for its own storage class
const startCluster = async (name, host, objects, cidr) => {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify({ objects, page: 2, service_cidr: cidr, ready_after_gets: 1 }));
  const proc = spawn("python3", [path.join(here, "../../crates/cli/tests/cli/support/kube_standin.py"), dir, host], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    proc.stdout.once("data", (d) => resolve(JSON.parse(String(d).split("\n")[0]).url));
    proc.once("exit", (c) => reject(new Error(`the Kubernetes stand-in ${name} stopped (${c})`)));
  });
  return { dir, proc, url, state: () => JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) };
};
const storageClass = (name) => ({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name }, provisioner: "disk.csi.akshci.com" });
const kubeA = await startCluster("kube-a", "127.0.0.3", [
  { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
  storageClass("fast"),
  { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web-config", namespace: "shop" }, data: { greeting: "hello from A" } },
  { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data", namespace: "shop" }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: "fast", resources: { requests: { storage: "1Gi" } } } },
  { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop" }, spec: { replicas: 1, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "nginx" }], volumes: [{ name: "d", persistentVolumeClaim: { claimName: "data" } }, { name: "c", configMap: { name: "web-config" } }] } } } },
], "10.96.");
const kubeB = await startCluster("kube-b", "127.0.0.4", [storageClass("aks-hci-disk")], "10.97.");
runCli("plugins", "install", path.join(plugins, "kubernetes.wasm"));
// volume data: the CLI tests' kubectl stand-in, copying to and from the stand-ins' pods
const kubeStage = path.join(tmp, "kube-stage");
fs.mkdirSync(kubeStage);
fs.writeFileSync(path.join(tmp, "kube-contexts.json"), JSON.stringify({ "aks-a": kubeA.dir, "aks-b": kubeB.dir }));
fs.writeFileSync(path.join(nodeDir, "kubectl"),
  `#!/bin/sh\nexec python3 '${path.join(here, "../../crates/cli/tests/cli/support/fake_kubectl.py")}' '${path.join(tmp, "kube-contexts.json")}' "$@"\n`);
fs.chmodSync(path.join(nodeDir, "kubectl"), 0o755);
runCli("plugins", "grant", "kubernetes", "engine", `http:${kubeA.url.replace("http://", "")}`, `http:${kubeB.url.replace("http://", "")}`,
  "command:kubectl@local", "command:rm@local", `files:${kubeStage}`, `files-write:${kubeStage}`);
runCli("azure", "audience", "add", "127.0.0.3", "6dae42f8-4368-4678-94ff-3960e28e3630/.default");
runCli("azure", "audience", "add", "127.0.0.4", "6dae42f8-4368-4678-94ff-3960e28e3630/.default");
runCli("plugins", "install", path.join(plugins, "keyvault.wasm"));
runCli("plugins", "grant", "keyvault", "engine", `http:${kvUrls.arm.replace("http://", "")}`, `http:${kvUrls.vault.replace("http://", "")}`);
runCli("azure", "audience", "add", "127.0.0.1", "https://management.azure.com/.default");
runCli("azure", "audience", "add", "127.0.0.2", "https://vault.azure.net/.default");
// the manifest server of the updates part; the (debug) app reads where it is when it starts
const upd = await updateServer(tmp);
Object.assign(env, upd.env);
const driver = await startDriver(env);
let s;
let failed = false;
// the lowest contrast between a visible text and the background behind it
const CONTRAST = `
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  let worst = { ratio: 99, what: "" };
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("[disabled], :disabled, option, script, style")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden" || Number(st.opacity) === 0) continue;
    const a = lum(rgb(st.color)), b = lum(bgOf(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < worst.ratio) worst = { ratio, what: el.tagName + "." + el.className + " '" + el.textContent.trim().slice(0, 40) + "'" };
  }
  return worst;`;
// the restore wizard up to its target step: asset, its newest restore point, the kind
const wizardTo = async (asset, kind) => {
  await s.click(`[data-testid="wizard-asset"] option[value="${asset}"]`);
  await s.click('[data-testid="wizard-next"]');
  await s.click('[data-testid="wizard-point"]');
  await s.click('[data-testid="wizard-next"]');
  await s.click(`[data-testid="wizard-kind-${kind}"]`);
  await s.click('[data-testid="wizard-next"]');
};
const shot = async (name) => fs.writeFileSync(path.join(out, `${name}.png`), await s.screenshot());
const check = (cond, msg) => {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok - ${msg}`);
};
const sameTree = (a, b) => {
  const list = (d) => fs.readdirSync(d, { recursive: true }).map(String).sort();
  const la = list(a);
  if (JSON.stringify(la) !== JSON.stringify(list(b))) return false;
  return la.every((f) => fs.statSync(path.join(a, f)).isDirectory() || fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))));
};

try {
  s = await Session.create(driver.url, app);
  // ---- repositories: create a local repository
  await s.wait('[data-testid="repo-status"]');
  await shot("1-repositories-empty");
  // the storage check runs the backend contract below a folder and leaves it as it was
  await s.type('[data-testid="repo-location"]', tmp);
  await s.click('[data-testid="storage-check"]');
  await s.wait('[data-testid="storage-check-result"]', (t) => t.includes("behaves as a repository needs"), 60000);
  check(!fs.readdirSync(tmp).some((f) => f.startsWith("rehydra-storage-check")), "Check storage passes on a local folder and leaves nothing behind");
  // an error says what to do in the app's words: the engine's hint, not a CLI flag
  await s.type('[data-testid="repo-password"]', "correct horse battery staple");
  await s.click('[data-testid="repo-connect"]');
  const hint = await s.wait('[data-testid="error-hint"]', (t) => t.includes("create a repository there"));
  check(!(await s.text(hint)).includes("--"), "connecting to a folder that is no repository says what to do, without CLI flags");
  const repo = path.join(tmp, "repo");
  await s.type('[data-testid="repo-location"]', repo);
  await s.type('[data-testid="repo-password"]', "short");
  await s.click('[data-testid="repo-create"]');
  await s.wait('[data-testid="error"]', (t) => t.includes("at least 8 characters"));
  check(!fs.existsSync(repo), "a weak password is refused with a clear error, nothing created");
  await s.type('[data-testid="repo-password"]', "correct horse battery staple");
  await s.click('[data-testid="repo-create"]');
  await s.wait('[data-testid="repo-status"]', (t) => t.includes("0 restore points"), 60000);
  check(fs.existsSync(path.join(repo, "config")), "the repository exists on disk");
  // the password kept in the OS keychain when asked: where no keychain answers (this
  // display has no Secret Service) the app says so and the repository opens all the same,
  // and an empty password is then refused naming the keychain; where one does, an empty
  // password opens it
  await s.click('[data-testid="repo-keep"]');
  await s.type('[data-testid="repo-password"]', "correct horse battery staple");
  await s.click('[data-testid="repo-connect"]');
  const kept = await s.text(await s.wait('[data-testid="repo-kept"]', (t) => t.includes("kept"), 30000));
  await s.click('[data-testid="repo-keep"]');
  // (the password field is emptied after a connect)
  await s.click('[data-testid="repo-connect"]');
  if (kept.includes("not kept")) {
    await s.wait('[data-testid="error"]', (t) => t.includes("none is kept in the OS keychain"), 30000);
    check(true, `a password the keychain could not keep is said so (${kept}), and an empty one is refused naming the keychain`);
  } else {
    await s.wait('[data-testid="repo-status"]', (t) => t.includes("0 restore points"), 30000);
    check(true, "a password kept in the OS keychain opens the repository with none typed");
  }
  await shot("2-repositories-open");
  // the repositories used with this catalog are offered; one click fills the location in
  await s.wait('[data-testid="repo-recent"]', (t) => t.includes(repo));
  await s.type('[data-testid="repo-location"]', "elsewhere");
  await s.click(`[data-testid="repo-recent-location"][title^="repository"]`);
  check((await s.exec("return document.querySelector('[data-testid=repo-location]').value")) === repo, "the Repositories screen offers the recent repositories, and one click fills the location in");

  // ---- protection: back up the folder now, with progress
  await s.click('[data-testid="nav-protection"]');
  await s.type('[data-testid="backup-path"]', data);
  await s.click('[data-testid="backup-run"]');
  await s.wait('[data-testid="backup-result"]', (t) => t.includes("Restore point"), 60000);
  await s.wait('[data-testid="job-history"]', (t) => t.includes("backup") && t.includes("succeeded"));
  check(true, "a backup ran from the Protection screen and shows in the job history");
  await s.click('[data-testid="job-log-toggle"]');
  await s.wait('[data-testid="job-log"]', (t) => /restore point [0-9a-f]{8} of .*: .* read, .* new/.test(t));
  check(true, "the job's log opens from the history");
  await shot("3-protection");
  await s.click('[data-testid="nav-repositories"]');
  await s.click('[data-testid="repo-check-data"]');
  await s.wait('[data-testid="repo-check-result"]', (t) => t.includes("All data OK: 1 restore points"), 60000);
  check(true, "Check all data verifies every stored chunk from the app");

  // ---- inventory: the folder is protected, never test-restored
  await s.click('[data-testid="nav-inventory"]');
  const row = await s.wait(`[data-testid="inventory-row"][data-asset="${data}"]`, (t) => t.includes("protected"));
  check((await s.text(row)).includes("Never test-restored"), "the inventory shows the folder protected, with its risk badge");
  await shot("4-inventory");

  // ---- restore wizard: asset → restore point → kind → target → plan → run → verify
  const wizard = async (target) => {
    await s.click('[data-testid="nav-inventory"]');
    await s.click('[data-testid="nav-restore"]');
    await wizardTo(data, "files");
    await s.type('[data-testid="wizard-target"]', target);
    await s.click('[data-testid="wizard-plan"]');
    return s.wait('[data-testid="plan"]');
  };
  const restored = path.join(tmp, "restored");
  await wizard(restored);
  check(!fs.existsSync(restored), "computing the plan touched nothing");
  check(!(await s.enabled('[data-testid="plan-run"]')), "the plan cannot run before it is confirmed");
  await shot("5-restore-plan");
  await s.click('[data-testid="plan-confirm"]');
  await s.click('[data-testid="plan-run"]');
  await s.wait('[data-testid="run-result"]', (t) => t.includes("Restored"), 60000);
  check(sameTree(data, restored), "the restored folder equals the original, byte for byte");
  await shot("6-restore-done");
  await s.click('[data-testid="wizard-to-verify"]');
  await s.click('[data-testid="verify-run"]');
  await s.wait('[data-testid="verify-result"]', (t) => t.includes("Verified"), 60000);
  await shot("7-restore-verified");

  // ---- an unsafe restore: over the files just restored, without consent → refused
  fs.writeFileSync(path.join(restored, "hello.txt"), "changed after the restore\n");
  await wizard(restored);
  await s.wait('[data-testid="plan-blockers"]', (t) => t.includes("already exist"));
  check(!(await s.enabled('[data-testid="plan-run"]')), "a plan with blockers cannot run");
  check(fs.readFileSync(path.join(restored, "hello.txt"), "utf8") === "changed after the restore\n", "nothing was overwritten");
  await shot("8-restore-blocked");

  // ---- inventory again: test-restored now
  await s.click('[data-testid="nav-inventory"]');
  const row2 = await s.wait(`[data-testid="inventory-row"][data-asset="${data}"]`);
  check(!(await s.text(row2)).includes("Never test-restored"), "after the restore the risk badge is gone");

  // ---- a protection policy: saved, run now, its retention applied
  // with a copy target: a second repository (its own password) every run is copied to
  const offsite = path.join(tmp, "offsite");
  const offsiteEnv = { ...env, REHYDRA_REPOSITORY: offsite, REHYDRA_PASSWORD: "offsite pass phrase 2026" };
  execFileSync(cli, ["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"], { env: offsiteEnv, stdio: "ignore" });
  await s.click('[data-testid="nav-protection"]');
  await s.wait('[data-testid="service-status"]', (t) => t.includes("No Rehydra service runs"));
  // and tells a webhook (a server here) after every run
  const hooks = [];
  const hookServer = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => { hooks.push({ method: req.method, url: req.url, body }); res.end(); });
  });
  await new Promise((r) => hookServer.listen(0, "127.0.0.1", r));
  const hookUrl = `http://127.0.0.1:${hookServer.address().port}/hook`;
  await s.type('[data-testid="policy-name"]', "nightly");
  await s.type('[data-testid="policy-path"]', data);
  await s.type('[data-testid="policy-at"]', "02:00");
  await s.click('[data-testid="policy-notify"] summary');
  await s.click('[data-testid="policy-notify-when"] option[value="always"]');
  await s.type('[data-testid="policy-webhook"]', hookUrl);
  await s.type('[data-testid="policy-copy-to"]', offsite);
  await s.type('[data-testid="policy-copy-password"]', "not the password");
  await s.click('[data-testid="policy-save"]');
  await s.wait('[data-testid="policies"] [data-testid="error"]', (t) => /password/i.test(t));
  check(!(await s.exec("return !!document.querySelector('[data-testid=\"policy-list\"]')")), "a copy target with a wrong password is refused before the policy is saved");
  await s.type('[data-testid="policy-copy-password"]', "offsite pass phrase 2026");
  await s.click('[data-testid="policy-save"]');
  await s.wait('[data-testid="policy-list"]', (t) => t.includes("nightly") && t.includes("never") && t.includes(offsite));
  await s.click('[data-testid="policy-run-nightly"]');
  await s.wait('[data-testid="backup-result"]', (t) => t.includes("Policy nightly: restore point") && t.includes(`1 copied to ${offsite}`), 60000);
  await s.wait('[data-testid="policy-list"]', (t) => t.includes("min ago"));
  check(true, "a policy is saved, runs now, and shows its last run");
  const told = hooks.filter((h) => h.method === "POST" && h.url === "/hook").map((h) => JSON.parse(h.body));
  check(told.length === 1 && told[0].policy === "nightly" && told[0].status === "succeeded" && told[0].restore_points.length === 1,
    `the policy's webhook was told about the run (${JSON.stringify(told).slice(0, 300)})`);
  check((await s.text(await s.wait('[data-testid="policy-notify-nightly"]'))).includes("webhook on always"), "the policy list says whom it tells");
  check((await s.text(await s.wait('[data-testid="policy-schedule-nightly"]'))) === "at 02:00", "the policy list says when it runs (a time of day)");
  // a cron schedule, with its next runs; removed again before the app's timer runs it
  await s.click('[data-testid="policy-add"] > summary');
  await s.type('[data-testid="policy-name"]', "weekdays");
  await s.type('[data-testid="policy-path"]', data);
  await s.type('[data-testid="policy-cron"]', "0 2 * * 1-5");
  await s.type('[data-testid="policy-copy-password"]', "offsite pass phrase 2026");
  await s.click('[data-testid="policy-save"]');
  await s.wait('[data-testid="policy-schedule-weekdays"]', (t) => t === "cron 0 2 * * 1-5");
  const upcoming = await s.text(await s.wait('[data-testid="policy-upcoming-nightly"]'));
  check(upcoming.startsWith("next: ") && upcoming.split(";").length === 3, `the policy list shows a cron schedule and the next three runs (${upcoming})`);
  await s.click('[data-testid="policy-remove-weekdays"]');
  await s.wait('[data-testid="policy-list"]', (t) => !t.includes("weekdays"));
  hookServer.close();
  await handOver({ s, cli, env, repo, offsiteEnv, check });
  await shot("10-policies");
  await operators({ s, cli, env, tmp, check, shot });

  // ---- several repositories open at once: the off-site one connected beside the first
  await s.click('[data-testid="nav-repositories"]');
  await s.type('[data-testid="repo-location"]', offsite);
  await s.type('[data-testid="repo-password"]', "offsite pass phrase 2026");
  await s.click('[data-testid="repo-connect"]');
  await s.wait('[data-testid="repos-open"]', (t) => t.includes(offsite) && t.includes(repo));
  await s.wait('[data-testid="repo-status"]', (t) => t.includes(`Open: ${offsite}`));
  await s.click('[data-testid="repo-check"]');
  await s.wait('[data-testid="repo-check-result"]', (t) => t.includes("Structure OK"), 60000);
  // every repository's jobs in one history, each with the repository it ran on
  await s.click('[data-testid="nav-protection"]');
  await s.wait('[data-testid="job-history"]', (t) => t.includes(offsite) && t.includes(repo), 30000);
  const checkedOn = await s.exec("return document.querySelector('[data-testid=job-row][data-kind=check] [data-testid=job-repository]').textContent");
  const backedUpOn = await s.exec("return document.querySelector('[data-testid=job-row][data-kind=backup] [data-testid=job-repository]').textContent");
  check(checkedOn === offsite && backedUpOn === repo, `two repositories are open at once, and the job history lists the jobs of both, each with its repository (${checkedOn}; ${backedUpOn})`);
  // back to the first from the side bar (no password asked again), the other closed
  await s.click(`[data-testid="repo-switch"] option[value="${repo}"]`);
  await s.click('[data-testid="nav-repositories"]');
  await s.wait('[data-testid="repo-status"]', (t) => t.includes(`Open: ${repo}`));
  await s.exec(`[...document.querySelectorAll('[data-testid=repos-open] li')].find((li) => li.textContent.includes(${JSON.stringify(offsite)})).querySelector('[data-testid=repo-close]').click()`);
  await s.wait('[data-testid="repos-open"]', (t) => !t.includes(offsite) && t.includes(repo));
  check(!(await s.exec("return !!document.querySelector('[data-testid=repo-switch]')")), "switching back keeps the first open without its password again, and a closed repository leaves the list");

  // ---- plugins: the installed plugin, its signer and capabilities; a backup through it
  await s.click('[data-testid="nav-plugins"]');
  await s.wait('[data-testid="plugin-list"]', (t) => t.includes("example-files") && t.includes("trusted"));
  await s.click('[data-testid="plugin-details-example-files"]');
  await s.wait('[data-testid="plugin-details"]', (t) => t.includes("engine") && t.includes(`files:${tmp}`));
  await s.wait('[data-testid="plugin-limits"]', (t) => /Limits per call: \d+ MiB, \d+ s/.test(t));
  check(true, "plugin details show the limits in force and what the plugin asks for");
  check(true, "the Plugins screen shows the plugin, its trusted signature and its grants");
  await shot("9-plugins");
  await s.click('[data-testid="nav-protection"]');
  await s.type('[data-testid="plugin-asset"]', path.join(data, "sub"));
  await s.click('[data-testid="plugin-backup-run"]');
  await s.wait('[data-testid="backup-result"]', (t) => t.includes("Restore point"), 60000);
  check(true, "a plugin backup runs from the Protection screen");

  // ---- Settings → Azure: what is configured, why each source of the chain failed (no
  // Azure here), and choosing the Azure CLI sign-in, checked at once
  await s.click('[data-testid="nav-settings"]');
  await s.wait('[data-testid="azure-configured"]', (t) => t.includes("automatic"), 60000);
  await s.wait('[data-testid="azure-attempts"]', (t) => t.includes("Azure CLI"), 60000);
  await s.click('[data-testid="azure-kind"] option[value="azure-cli"]');
  await s.click('[data-testid="azure-save"]');
  await s.wait('[data-testid="azure-configured"]', (t) => t.includes("Azure CLI sign-in"), 60000);
  check(true, "Settings → Azure shows the identity in use, each failed source with its reason, and saves a choice");
  await updates({ s, app, check, shot }, upd);
  upd.close();
  await shot("10-settings-azure");
  await s.click('[data-testid="azure-kind"] option[value="auto"]');
  await s.click('[data-testid="azure-save"]');
  await s.wait('[data-testid="azure-configured"]', (t) => t.includes("automatic"), 60000);

  // ---- Settings → Connections: a command target (a cluster's node) kept, listed and removed; a directory
  // whose check fails is refused with the reason, and nothing is kept
  await s.type('[data-testid="target-name"]', "hv01");
  await s.type('[data-testid="target-ssh"]', "admin@hv01.contoso.local");
  await s.click('[data-testid="target-cluster"]');
  await s.click('[data-testid="target-add"]');
  // a cluster needs a known-hosts file of its own
  await s.wait('[data-testid="connections"] [data-testid="error"]', (t) => t.includes("known-hosts"), 60000);
  await s.type('[data-testid="target-known-hosts"]', path.join(tmp, "hci_known_hosts"));
  await s.click('[data-testid="target-add"]');
  // the cluster cannot be asked for its nodes from here: refused, nothing kept
  await s.wait('[data-testid="connections"] [data-testid="error"]', (t) => t.includes("nothing was kept"), 60000);
  check(
    !(await s.exec('return !!document.querySelector(\'[data-testid="targets"]\')')),
    "a cluster target whose nodes cannot be asked is refused with the reason, and nothing is kept",
  );
  await s.type('[data-testid="target-nodes"]', "hv01,hv02");
  await s.click('[data-testid="target-add"]');
  await s.wait('[data-testid="targets"]', (t) => t.includes("admin@hv01.contoso.local") && t.includes("nodes hv01, hv02 as hv01/<node>"));
  await s.click('[data-testid="target-remove-hv01"]');
  await s.wait('[data-testid="connections-result"]', (t) => t.includes("command target hv01 removed"));
  await s.type('[data-testid="dir-name"]', "127.0.0.1:1");
  await s.type('[data-testid="dir-bind"]', "svc-rehydra@contoso.local");
  await s.click('[data-testid="dir-pw-kind"] option[value="env"]');
  await s.type('[data-testid="dir-pw-where"]', "REHYDRA_E2E_NO_SUCH_VARIABLE");
  await s.click('[data-testid="dir-add"]');
  await s.wait('[data-testid="connections"] [data-testid="error"]', (t) => t.includes("nothing was kept"), 60000);
  check(
    !(await s.exec('return !!document.querySelector(\'[data-testid="directories"]\')')),
    "Settings → Connections keeps and removes a command target, and refuses a directory whose check fails, keeping nothing",
  );
  // Kerberos: no account or password asked for, and an address is refused as its name
  await s.click('[data-testid="dir-kerberos"]');
  const kerberosAsksNoPassword = await s.exec(
    'return !document.querySelector(\'[data-testid="dir-pw-kind"]\') && !!document.querySelector(\'[data-testid="dir-principal"]\')',
  );
  await s.click('[data-testid="dir-add"]');
  await s.wait('[data-testid="connections"] [data-testid="error"]', (t) => t.includes("Kerberos needs the DC's full host name"), 60000);
  await s.click('[data-testid="dir-kerberos"]');
  check(
    kerberosAsksNoPassword && !(await s.exec('return !!document.querySelector(\'[data-testid="directories"]\')')),
    "Settings → Connections binds a directory with Kerberos without asking for a password (a principal may be pinned), and refuses an address as a Kerberos name",
  );
  // a SQL Server instance: signing in fails (nothing listens there), nothing is kept; kept without
  // the check it is listed with where its password is, then removed; then one signed in to as the
  // account Rehydra runs as (only as one login): neither login nor password asked, none kept
  await s.type('[data-testid="sql-name"]', "127.0.0.1:1");
  await s.type('[data-testid="sql-login"]', "svc-rehydra");
  await s.click('[data-testid="sql-pw-kind"] option[value="env"]');
  await s.type('[data-testid="sql-pw-where"]', "REHYDRA_E2E_SQL_PW");
  await s.click('[data-testid="sql-add"]');
  await s.wait('[data-testid="connections"] [data-testid="error"]', (t) => t.includes("SQL Server") && t.includes("nothing was kept"), 60000);
  const keptAfterFailure = await s.exec('return !!document.querySelector(\'[data-testid="sql-servers"]\')');
  await s.click('[data-testid="sql-check"]');
  await s.click('[data-testid="sql-add"]');
  await s.wait('[data-testid="sql-servers"]', (t) => t.includes("127.0.0.1:1") && t.includes("environment variable REHYDRA_E2E_SQL_PW"));
  await s.click('[data-testid="sql-remove-127.0.0.1:1"]');
  await s.wait('[data-testid="connections-result"]', (t) => t.includes("SQL Server 127.0.0.1:1 removed"));
  await s.click('[data-testid="sql-kind"] option[value="integrated"]');
  const asksNothing = await s.exec('return !document.querySelector(\'[data-testid="sql-login"], [data-testid="sql-pw-kind"]\')');
  await s.type('[data-testid="sql-name"]', "sql01.contoso.local");
  await s.type('[data-testid="sql-only-as"]', "CONTOSO\\svc-rehydra");
  await s.click('[data-testid="sql-add"]');
  await s.wait('[data-testid="sql-servers"]', (t) => t.includes("the account Rehydra runs as") && t.includes("only as CONTOSO\\svc-rehydra") && t.includes("no password kept"));
  await s.click('[data-testid="sql-remove-sql01.contoso.local"]');
  await s.wait('[data-testid="connections-result"]', (t) => t.includes("SQL Server sql01.contoso.local removed"));
  // through PowerShell on a command target (this machine's): no login, password or CA asked
  await s.click('[data-testid="sql-kind"] option[value="via"]');
  const viaAsksNothing = await s.exec('return !document.querySelector(\'[data-testid="sql-login"], [data-testid="sql-ca"], [data-testid="sql-only-as"]\')');
  await s.type('[data-testid="sql-name"]', "sql02");
  await s.click('[data-testid="sql-add"]');
  await s.wait('[data-testid="sql-servers"]', (t) => t.includes("from this machine's PowerShell 7") && t.includes("the account commands run as on local"));
  await s.click('[data-testid="sql-remove-sql02"]');
  await s.wait('[data-testid="connections-result"]', (t) => t.includes("SQL Server sql02 removed"));
  check(viaAsksNothing, "Settings → Connections keeps an instance reached through PowerShell on a command target, asking no login, password or CA");
  check(
    !keptAfterFailure && asksNothing && !(await s.exec('return !!document.querySelector(\'[data-testid="sql-servers"]\')')),
    "Settings → Connections refuses a SQL Server instance it cannot sign in to, keeping nothing; keeps one unchecked, lists where its password is (or that none is kept, signed in as the account Rehydra runs as), removes it",
  );
  // a kubeconfig's cluster: one skipping TLS verification is refused; one whose user runs kubelogin
  // is listed with its API server and how the host signs in (Entra, kubelogin not run), then removed
  const kubeconfig = path.join(tmp, "kubeconfig");
  fs.writeFileSync(kubeconfig, [
    "apiVersion: v1", "kind: Config", "current-context: ops",
    "clusters:", "- name: b", "  cluster:", `    server: ${kubeB.url}`, "- name: careless", "  cluster:", "    server: https://10.0.0.9:6443", "    insecure-skip-tls-verify: true",
    "contexts:", "- name: ops", "  context: {cluster: b, user: entra}", "- name: careless", "  context: {cluster: careless, user: entra}",
    "users:", "- name: entra", "  user:", "    exec: {command: kubelogin, args: [get-token]}", "",
  ].join("\n"));
  await s.type('[data-testid="kube-name"]', "aks-b");
  await s.type('[data-testid="kube-config"]', kubeconfig);
  await s.type('[data-testid="kube-context"]', "careless");
  await s.click('[data-testid="kube-add"]');
  await s.wait('[data-testid="connections"] [data-testid="error"]', (t) => t.includes("skips TLS verification"), 60000);
  await s.exec('const i = document.querySelector(\'[data-testid="kube-context"]\'); const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set; set.call(i, ""); i.dispatchEvent(new Event("input", { bubbles: true }));');
  await s.click('[data-testid="kube-add"]');
  await s.wait('[data-testid="kube-clusters"]', (t) => t.includes(kubeB.url) && t.includes("Entra"));
  await s.click('[data-testid="kube-remove-aks-b"]');
  await s.wait('[data-testid="connections-result"]', (t) => t.includes("cluster aks-b removed"));
  check(true, "Settings → Connections refuses a kubeconfig that skips TLS verification, keeps one that reads, lists its API server and sign-in, removes it");
  await shot("10b-settings-connections");

  // ---- VM workloads: the TVM backed up (by the CLI, into the same repository), the
  // inventory tree from the plugin's discovery, and a plan that refuses to start a TVM
  // before its key is imported
  execFileSync(cli, ["plugins", "run", "hyperv-vm", "backup", "--asset", TVM, "--set", "node=local", "--set", `path-map=C:\\ClusterStorage\\=${csv}/`], {
    env: { ...env, REHYDRA_REPOSITORY: repo, REHYDRA_PASSWORD: "correct horse battery staple" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await s.click('[data-testid="nav-inventory"]');
  await s.click("main details summary");
  await s.click('[data-testid="discover-plugin"] option[value="hyperv-vm"]');
  // the plugin's declared discovery settings, as a form
  await s.type('[data-testid="setting-cluster"]', "hci-a");
  await s.type('[data-testid="setting-nodes"]', "local");
  await s.click('[data-testid="discover-run"]');
  const tvmRow = await s.wait(`[data-testid="inventory-row"][data-asset="${TVM}"]`, (t) => t.includes("tvm01"));
  check((await s.text(tvmRow)).includes("Trusted launch VM without a key backup"), "the inventory shows the discovered TVM with its missing-key badge");
  await s.wait(`[data-testid="inventory-row"][data-asset="cluster/hci-a"]`);
  const depth = (id) => s.exec(`return document.querySelector('[data-testid="inventory-row"][data-asset="' + arguments[0] + '"]').dataset.depth`, [id]);
  check((await depth("cluster/hci-a")) === "0" && (await depth("node/local")) === "1" && (await depth(TVM)) === "2", "the inventory is a tree: cluster, node, VM");
  await shot("11-inventory-vms");
  // a row's own actions: "Back up now" opens Protection with its plugin and asset ready,
  // "Restore…" opens the wizard at it
  await s.click(`[data-testid="row-backup-${TVM}"]`);
  const value = (css) => s.exec(`return document.querySelector(arguments[0]).value`, [css]);
  await s.wait('[data-testid="plugin-asset"]');
  check((await value('[data-testid="plugin-asset"]')) === TVM, "an inventory row's \"Back up now\" opens Protection with its plugin and asset filled in");
  await s.click('[data-testid="nav-inventory"]');
  await s.click(`[data-testid="row-protect-${TVM}"]`);
  await s.wait('[data-testid="policy-asset"]');
  check(
    (await value('[data-testid="policy-asset"]')) === TVM && (await s.exec('return document.querySelector(\'[data-testid="policy-add"]\').open')),
    "an inventory row's \"Protect…\" opens the policy form with its plugin and asset filled in",
  );
  await s.click('[data-testid="nav-inventory"]');
  await s.click(`[data-testid="row-restore-${TVM}"]`);
  await s.wait('[data-testid="wizard-asset"]');
  for (let i = 0; i < 50 && (await value('[data-testid="wizard-asset"]')) !== TVM; i++) await new Promise((r) => setTimeout(r, 100));
  check((await value('[data-testid="wizard-asset"]')) === TVM, "an inventory row's \"Restore…\" opens the restore wizard at that asset");
  await wizardTo(TVM, "plugin");
  await s.type('[data-testid="wizard-target"]', "C:\\ClusterStorage\\Volume9\\restored");
  // the plugin's declared restore settings, as a form (the host checks them again)
  await s.wait('[data-testid="wizard-options-form"]', (t) => t.includes("path-map") && t.includes("start"));
  await s.type('[data-testid="setting-node"]', "local");
  await s.type('[data-testid="setting-path-map"]', `C:\\ClusterStorage\\=${csvB}/`);
  await s.click('[data-testid="setting-start"]');
  check(await s.exec('return document.querySelector(\'[data-testid="setting-start"]\').type === "checkbox"'), "a plugin's restore settings render as a form from its declaration: a true/false setting is a checkbox");
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan-blockers"]', (t) => t.includes("start=true is refused for a Trusted launch VM"));
  check(!(await s.enabled('[data-testid="plan-run"]')), "the plan refuses to start a Trusted launch VM before its key import, and cannot run");
  await shot("12-restore-tvm-refused");

  // ---- Key Vault: the vault and its secrets in the inventory, the expiring deployment
  // secret badged; backed up (by the CLI); a deleted and purged secret restored through
  // the wizard with the plugin's own plan
  runCli("azure", "login", "--cli");
  await s.click('[data-testid="nav-inventory"]');
  await s.wait('[data-testid="discover-plugin"]');
  await s.exec("document.querySelector('main details').open = true");
  await s.click('[data-testid="discover-plugin"] option[value="keyvault"]');
  await s.type('[data-testid="setting-subscriptions"]', SUB);
  await s.type('[data-testid="setting-arm"]', kvUrls.arm);
  await s.click('[data-testid="discover-run"]');
  const secretRow = await s.wait(`[data-testid="inventory-row"][data-asset="${VAULT}/secrets/LocalAdminCredential"]`, (t) => t.includes("LocalAdminCredential"), 60000);
  check(/expires in \d+ days/.test(await s.text(secretRow)), "the inventory shows the vault's secrets, the one about to expire with its badge");
  execFileSync(cli, ["plugins", "run", "keyvault", "backup", "--asset", VAULT, "--set", `arm=${kvUrls.arm}`, "--set", "portable=true"], {
    env: { ...env, REHYDRA_REPOSITORY: repo, REHYDRA_PASSWORD: "correct horse battery staple" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await s.click('[data-testid="discover-run"]');
  await s.wait(`[data-testid="inventory-row"][data-asset="${VAULT}/secrets/app-conn"]`, (t) => t.includes("protected"), 60000);
  check(true, "after the vault's backup its secrets show protected with it");
  await shot("13-inventory-keyvault");
  const kvState = JSON.parse(fs.readFileSync(path.join(kvDir, "state.json"), "utf8"));
  delete kvState.vaults["hci-kv"].secrets["app-conn"];
  fs.writeFileSync(path.join(kvDir, "state.json"), JSON.stringify(kvState));
  await s.click('[data-testid="nav-restore"]');
  await wizardTo(VAULT, "plugin");
  await s.type('[data-testid="wizard-target"]', "-");
  await s.wait('[data-testid="wizard-options-form"]', (t) => t.includes("object") && t.includes("unportable"));
  await s.type('[data-testid="setting-object"]', "secrets/app-conn");
  await s.type('[data-testid="setting-arm"]', kvUrls.arm);
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan"]', (t) => t.includes("Restore operation"));
  check(!JSON.parse(fs.readFileSync(path.join(kvDir, "state.json"), "utf8")).vaults["hci-kv"].secrets["app-conn"], "the Key Vault plan touched nothing");
  await s.click('[data-testid="plan-confirm"]');
  await s.click('[data-testid="plan-run"]');
  await s.wait('[data-testid="run-result"]', (t) => /restored/i.test(t), 60000);
  const back = JSON.parse(fs.readFileSync(path.join(kvDir, "state.json"), "utf8")).vaults["hci-kv"].secrets["app-conn"];
  check(back && back.versions[0].value === "Server=sql;Password=x", "a purged secret came back into its vault through the wizard, with its value");
  await shot("14-restore-keyvault");

  // ---- Kubernetes: cluster A's namespaces in the inventory; the shop namespace backed
  // up (by the CLI) and restored through the wizard into another namespace of cluster B
  await s.click('[data-testid="nav-inventory"]');
  await s.wait('[data-testid="discover-plugin"]');
  await s.exec("document.querySelector('main details').open = true");
  await s.click('[data-testid="discover-plugin"] option[value="kubernetes"]');
  await s.type('[data-testid="setting-kube"]', kubeA.url);
  await s.type('[data-testid="setting-cluster"]', "aks-a");
  await s.click('[data-testid="discover-run"]');
  await s.wait('[data-testid="inventory-row"][data-asset="aks-a/shop"]', (t) => t.includes("shop"), 60000);
  check(true, "the inventory shows a cluster's namespaces from the Kubernetes API");
  // the application's file on the volume its claim is bound to, then a backup with it
  const claimA = kubeA.state().objects.find((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === "data");
  const volA = path.join(kubeA.dir, "volumes", claimA.spec.volumeName);
  fs.mkdirSync(volA, { recursive: true });
  fs.writeFileSync(path.join(volA, "orders.csv"), "id,total\n1,9.99\n");
  execFileSync(cli, ["plugins", "run", "kubernetes", "backup", "--asset", "aks-a/shop", "--set", `kube=${kubeA.url}`, "--set", "cluster=aks-a",
    "--set", "volume-data=pod", "--set", `staging=${kubeStage}`, "--set", "kube-context=aks-a"], {
    env: { ...env, REHYDRA_REPOSITORY: repo, REHYDRA_PASSWORD: "correct horse battery staple" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await s.click('[data-testid="nav-restore"]');
  await wizardTo("aks-a/shop", "plugin");
  await s.type('[data-testid="wizard-target"]', "-");
  await s.wait('[data-testid="wizard-options-form"]', (t) => t.includes("namespace-map") && t.includes("storage-class-map"));
  await s.type('[data-testid="setting-kube"]', kubeB.url);
  await s.type('[data-testid="setting-namespace-map"]', "shop=shop-dr");
  await s.type('[data-testid="setting-wait-secs"]', "20");
  // the search beside `objects`: the point's objects holding "web"; one picked fills the
  // field in (then it is emptied again, for the whole namespace below)
  await s.type('[data-testid="find-objects"]', "web");
  await s.click('[data-testid="find-objects-go"]');
  await s.wait('[data-testid="found-objects"]', (t) => /deployments[^/]*\/shop\/web\b/.test(t) && t.includes("configmaps/shop/web-config"));
  const finderHidden = !(await s.exec('return !!document.querySelector(\'[data-testid="setting-find"]\')'));
  await s.click('[data-testid="found-objects"] [data-testid="found-pick"]');
  const picked = await s.exec('return document.querySelector(\'[data-testid="setting-objects"]\').value');
  check(finderHidden && /\/shop\/web/.test(picked), "the wizard's search beside a setting lists the restore point's objects and fills the field in with the one picked");
  await s.type('[data-testid="setting-objects"]', " ");
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan"]', (t) => t.includes("storage class `fast` does not exist"));
  check(true, "the Kubernetes plan is blocked while the target cluster lacks the storage class, and says which it has");
  await s.click('[data-testid="plan-change"]');
  await s.type('[data-testid="setting-storage-class-map"]', "fast=aks-hci-disk");
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan"]', (t) => t.includes("holds the files of persistentvolumeclaims shop-dr/data"));
  check(true, "the Kubernetes plan is blocked while it does not say what to do with the claim's files");
  await s.click('[data-testid="plan-change"]');
  await s.click('[data-testid="setting-volume-data"] option[value="pod"]');
  await s.type('[data-testid="setting-staging"]', kubeStage);
  await s.type('[data-testid="setting-kube-context"]', "aks-b");
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan"]', (t) => t.includes("Create workloads") && t.includes("files of the new claims") && !t.includes("does not exist"));
  check(!kubeB.state().objects.some((o) => o.metadata.namespace === "shop-dr"), "the Kubernetes plan touched nothing");
  await s.click('[data-testid="plan-confirm"]');
  await s.click('[data-testid="plan-run"]');
  await s.wait('[data-testid="run-result"]', (t) => /restored/i.test(t), 90000);
  const dr = kubeB.state().objects.filter((o) => o.metadata.namespace === "shop-dr");
  const dep = dr.find((o) => o.kind === "Deployment");
  const claimB = dr.find((o) => o.kind === "PersistentVolumeClaim");
  const filesB = claimB && claimB.spec.volumeName ? path.join(kubeB.dir, "volumes", claimB.spec.volumeName, "orders.csv") : "";
  check(dr.some((o) => o.kind === "ConfigMap" && o.data.greeting === "hello from A") && dep && dep.status.readyReplicas === 1
    && filesB && fs.existsSync(filesB) && fs.readFileSync(filesB, "utf8") === "id,total\n1,9.99\n",
    "a namespace of one cluster came back in another namespace of another cluster through the wizard, its claim's files in its new volume, its workload ready");
  await shot("14b-restore-kubernetes");
  await activeDirectory({ s, cli, env, repo, tmp, plugins, check, wizardTo, shot });
  await sqlServer({ s, cli, env, repo, tmp, plugins, check, wizardTo, shot });

  // ---- Assessment: the key vaults swept read-only and judged against the open repository,
  // the report saved as HTML and PDF: a tab, Run, Save
  fs.rmSync(path.join(kvDir, "calls.log"), { force: true });
  await s.click('[data-testid="nav-assessment"]');
  await s.wait('[data-testid="assess-plugin-keyvault"]');
  await s.exec(`document.querySelectorAll('[data-testid^="assess-plugin-"]').forEach((c) => { if (c.dataset.testid !== "assess-plugin-keyvault" && c.checked) c.click(); })`);
  await s.exec(`document.querySelector('[data-testid="assess-plugin-keyvault"]').closest("div").querySelector("details").open = true`);
  await s.type('[data-testid="setting-subscriptions"]', SUB);
  await s.type('[data-testid="setting-arm"]', kvUrls.arm);
  await s.type('[data-testid="assess-customer"]', "Contoso Ltd");
  await s.click('[data-testid="assess-run"]');
  const result = await s.wait('[data-testid="assess-result"]', (t) => t.includes("Score"), 90000);
  const findingsText = await s.text(result);
  check(findingsText.includes("keyvault.expiring") && findingsText.includes("rehydra.repository-not-immutable") && !findingsText.includes("rehydra.no-repository"),
    `the assessment finds the expiring secret and judges the vault against the open repository: ${findingsText.slice(0, 600)}`);
  const kvCalls = fs.readFileSync(path.join(kvDir, "calls.log"), "utf8").trim().split("\n");
  check(kvCalls.length > 0 && kvCalls.every((l) => l.startsWith("GET ")), "the sweep only read from Key Vault and ARM");
  const reportDir = path.join(tmp, "assessment");
  await s.type('[data-testid="assess-dir"]', reportDir);
  await s.click('[data-testid="assess-save"]');
  await s.wait('[data-testid="assess-saved"]', (t) => t.includes("report.pdf"), 120000);
  const html = fs.readFileSync(path.join(reportDir, "report.html"), "utf8");
  check(html.includes("Contoso Ltd") && !html.includes("Password=x") && fs.statSync(path.join(reportDir, "report.pdf")).size > 1000,
    "the report is saved as HTML and PDF, with the customer's name and no secret");
  await shot("14c-assessment");

  // ---- files from inside a disk: an ext4 image backed up as a disk, one folder copied out
  const fsSrc = path.join(tmp, "ext4-src");
  fs.mkdirSync(path.join(fsSrc, "docs"), { recursive: true });
  fs.writeFileSync(path.join(fsSrc, "docs", "report.txt"), "quarterly numbers\n".repeat(1000));
  fs.writeFileSync(path.join(fsSrc, "docs", "notes.md"), "# notes\n");
  const img = path.join(tmp, "disk.img");
  execFileSync("mkfs.ext4", ["-q", "-F", "-d", fsSrc, img, "16M"], { env: { ...env, PATH: `${env.PATH}:/sbin:/usr/sbin` } });
  execFileSync(cli, ["backup", "--disk", img], { env: { ...env, REHYDRA_REPOSITORY: repo, REHYDRA_PASSWORD: "correct horse battery staple" }, stdio: "ignore" });
  await s.click('[data-testid="nav-inventory"]');
  await s.click('[data-testid="nav-restore"]');
  await wizardTo(img, "inside");
  const fromDisk = path.join(tmp, "from-disk");
  fs.mkdirSync(fromDisk);
  await s.type('[data-testid="wizard-target"]', fromDisk);
  await s.type('[data-testid="wizard-inside-path"]', "/docs");
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan"]', (t) => t.includes("Copy /docs from inside the disk"));
  await s.click('[data-testid="plan-confirm"]');
  await s.click('[data-testid="plan-run"]');
  await s.wait('[data-testid="run-result"]', (t) => t.includes("Restored"), 60000);
  check(sameTree(path.join(fsSrc, "docs"), path.join(fromDisk, "docs")), "a folder restored from inside a disk image equals the original");
  await shot("13-restore-from-inside-disk");

  // ---- instant recovery: the same disk served over NBD from the wizard, read by qemu-img
  await s.click('[data-testid="nav-inventory"]');
  await s.click('[data-testid="nav-restore"]');
  await wizardTo(img, "instant");
  const port = 20000 + Math.floor(Math.random() * 20000);
  await s.type('[data-testid="wizard-target"]', `127.0.0.1:${port}`);
  await s.type('[data-testid="wizard-overlay"]', path.join(repo, "overlay.img"));
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan-blockers"]', (t) => t.includes("outside the repository"));
  check(!(await s.enabled('[data-testid="plan-run"]')), "instant recovery refuses an overlay inside the repository");
  await s.click('[data-testid="plan-change"]');
  const overlayFile = path.join(tmp, "overlay.img");
  await s.type('[data-testid="wizard-overlay"]', overlayFile);
  await s.click('[data-testid="wizard-plan"]');
  await s.wait('[data-testid="plan"]', (t) => t.includes(`nbd://127.0.0.1:${port}/disk`) && t.includes("writes kept in the new file"));
  await s.click('[data-testid="plan-confirm"]');
  await s.click('[data-testid="plan-run"]');
  await s.wait('[data-testid="export"][data-running="yes"]', (t) => t.includes(`nbd://127.0.0.1:${port}/disk`));
  execFileSync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "raw", img, `nbd://127.0.0.1:${port}/disk`]);
  check(true, "instant recovery from the wizard serves the disk over NBD; qemu-img compares it equal to the original");
  await shot("14-instant-recovery");
  await s.click('[data-testid="export-stop"]');
  await s.wait('[data-testid="export"][data-running="no"]');
  let refused = false;
  try {
    execFileSync("qemu-img", ["info", `nbd://127.0.0.1:${port}/disk`], { stdio: "ignore" });
  } catch {
    refused = true;
  }
  check(refused && fs.existsSync(overlayFile), "stopping the export closes it; writes had their own overlay file");

  // ---- themes: every screen in light and dark, and its text contrast measured (WCAG AA:
  // 4.5:1 for text; disabled controls are exempt)
  // keyboard: the screens are reached with Tab and Enter from the navigation
  await s.exec(`document.querySelector('[data-testid="nav-inventory"]').focus()`);
  await s.keys("\uE007");
  await s.wait("main h1", (t) => t.includes("Inventory"));
  await s.keys("\uE004", "\uE007");
  await s.wait("main h1", (t) => t.includes("Protection"));
  check(true, "the screens are reachable by keyboard (Tab, Enter)");
  const unlabelled = [];
  for (const theme of ["light", "dark"]) {
    await s.click(`[data-testid="theme"] option[value="${theme}"]`);
    let worst = { ratio: 99, what: "" };
    for (const screen of ["inventory", "protection", "restore", "assessment", "repositories", "plugins", "settings"]) {
      await s.click(`[data-testid="nav-${screen}"]`);
      await s.wait("main h1");
      await new Promise((r) => setTimeout(r, 300));
      await shot(`${theme}-${screen}`);
      const w = await s.exec(CONTRAST);
      if (w.ratio < worst.ratio) worst = { ratio: w.ratio, what: `${screen}: ${w.what}` };
      unlabelled.push(...(await s.exec(`return [...document.querySelectorAll("input, select, textarea, button")]
        .filter((e) => e.type !== "hidden" && e.getClientRects().length)
        .filter((e) => e.tagName === "BUTTON" ? !e.textContent.trim() && !e.getAttribute("aria-label") : !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
        .map((e) => "${screen}: " + e.outerHTML.slice(0, 100))`)));
    }
    check(worst.ratio >= 4.5, `${theme} theme: every text on every screen has contrast >= 4.5:1 (lowest ${worst.ratio.toFixed(2)}, ${worst.what})`);
  }
  check(unlabelled.length === 0, `every control on every screen has a label${unlabelled.length ? ": " + unlabelled.join(" | ") : ""}`);
  console.log(`screenshots in ${out}`);
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
  if (s) await shot("failure").catch(() => {});
} finally {
  kvProc.kill();
  kubeA.proc.kill();
  kubeB.proc.kill();
  if (s) await s.close();
  driver.proc.kill();
  fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 10 });
}
process.exit(failed ? 1 : 0);
