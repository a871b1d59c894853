// The app's end-to-end test, service part. A service started from the command line for
// the app's repository is seen by the app, and "Run now" hands the run to it. Then the
// operators: a service of another catalog (the machine's, which the app does not open)
// started with `--operators` and this account's group; the app shows it as "The
// machine's service" on the Protection screen, runs its policy through the service's
// socket, and shows the run with who asked as the kernel named them; nothing of the
// policy's settings (a webhook's token) reaches the screen.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync, spawn } from "node:child_process";

const TOKEN = "operator-e2e-SECRET";

/** `t`: the test's session `s`, `cli`, `env`, `repo`, `offsiteEnv` (the copy target's), `check`. */
export async function handOver(t) {
  const { s, cli, env, repo, offsiteEnv, check } = t;
  // a service started from the command line for the app's repository (with the copy
  // target's password, which the app never hands over) is seen by the app, and "Run now"
  // hands the run to it: the job runs in the service, not in the app
  const svcEnv = { ...env, REHYDRA_REPOSITORY: repo, REHYDRA_PASSWORD: "correct horse battery staple", REHYDRA_COPY_PASSWORD: "offsite pass phrase 2026" };
  const svc = spawn(cli, ["service", "--interval", "60"], { env: svcEnv, stdio: "ignore" });
  for (let i = 0; i < 100 && !execFileSync(cli, ["service", "--status"], { env }).toString().includes("a service runs"); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  await s.click('[data-testid="nav-inventory"]');
  await s.click('[data-testid="nav-protection"]');
  await s.wait('[data-testid="service-status"]', (t) => t.includes(`A Rehydra service runs (process ${svc.pid})`) && t.includes(repo));
  check(true, "the Protection screen shows the service that runs policies with the app closed");
  await s.wait('[data-testid="policy-list"]', (t) => t.includes("nightly"));
  // Run now is enabled once the screen has settled (a click on a disabled button is lost)
  for (let i = 0; i < 100 && !(await s.enabled('[data-testid="policy-run-nightly"]')); i++) await new Promise((r) => setTimeout(r, 100));
  await s.click('[data-testid="policy-run-nightly"]');
  await s.wait('[data-testid="backup-result"]', (t) => t.includes("Policy nightly handed to the service"), 60000);
  await s.wait('[data-testid="service-runs"]', (t) => /succeeded \(1 restore point/.test(t) && t.includes("the desktop app"), 60000);
  const svcLog = JSON.parse(execFileSync(cli, ["--json", "service", "--status"], { env }).toString());
  check(svcLog.requests.length === 1 && svcLog.requests[0].state === "succeeded" && svcLog.requests[0].started,
    `Run now with a service running hands the run to the service, which runs it and says how it went (${JSON.stringify(svcLog.requests).slice(0, 300)})`);
  const gone = new Promise((r) => svc.on("exit", r));
  svc.kill("SIGTERM");
  await gone;
  const copies = JSON.parse(execFileSync(cli, ["--json", "restore-points"], { env: offsiteEnv }).toString());
  // the service's run (the same day's second) was copied, and daily retention kept it alone
  check(copies.length === 1 && copies[0].copied_from && copies[0].tags.includes("policy:nightly") && /retention removed 1\b/.test(svcLog.requests[0].message),
    "the policy's runs were copied to its copy target (the service's with its password), retention applied there too");
}

/** `t`: the test's session `s`, `cli`, `env` (with REHYDRA_SERVICE_SOCKET), `tmp`, `check`, `shot`. */
export async function operators(t) {
  const { s, check } = t;
  const dir = path.join(t.tmp, "machine");
  const [repo, data] = [path.join(dir, "repo"), path.join(dir, "data")];
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, "ledger.txt"), "the machine's data");
  const env = { ...t.env, REHYDRA_CATALOG: path.join(dir, "catalog.db"), REHYDRA_REPOSITORY: repo, REHYDRA_PASSWORD: "machine pass" };
  const cli = (...args) => execFileSync(t.cli, args, { env, stdio: ["ignore", "pipe", "pipe"] }).toString();
  cli("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1");
  cli("policy", "add", "machine-nightly", "--folder", data, "--every-hours", "24", "--keep-last", "3", "--webhook", `http://127.0.0.1:9/${TOKEN}`);
  const group = execFileSync("id", ["-gn"]).toString().trim();
  const log = path.join(dir, "service.log");
  const svc = spawn(t.cli, ["service", "--interval", "3600", "--operators", group], { env, stdio: ["ignore", "ignore", fs.openSync(log, "w")] });
  try {
    for (let i = 0; i < 300 && !fs.readFileSync(log, "utf8").includes("policy machine-nightly: succeeded"); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    await s.click('[data-testid="nav-inventory"]');
    await s.click('[data-testid="nav-protection"]');
    const panel = await s.text(await s.wait('[data-testid="operator-panel"]', (x) => x.includes("machine-nightly") && x.includes(repo), 30000));
    check(!panel.includes(TOKEN) && !panel.includes("127.0.0.1:9"), "an operator sees the machine's service, its repository and policy, and nothing of the policy's settings");
    await s.click('[data-testid="operator-run-machine-nightly"]');
    const user = os.userInfo().username;
    const runs = await s.text(await s.wait('[data-testid="operator-requests"]', (x) => /succeeded \(1 restore point/.test(x), 60000));
    check(runs.includes(`operator ${user} (uid ${os.userInfo().uid})`), `Run now as an operator runs the policy in the service, which names who asked as the kernel says (${runs.slice(0, 200)})`);
    const points = JSON.parse(cli("--json", "restore-points"));
    check(points.length === 2, `the operator's run made a restore point in the machine's repository (${points.length})`);
    await t.shot("10b-operator");
  } finally {
    svc.kill("SIGTERM");
  }
}
