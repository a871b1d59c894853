// Desktop app benchmarks (not tests): cold start to first paint, and rendering the
// inventory table with 1,000 assets. Prints a Markdown table.
// Run: xvfb-run -a node ui/e2e/bench.mjs   (app built: cargo build -p rehydra-app)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Session, startDriver } from "./webdriver.mjs";

const target = process.env.CARGO_TARGET_DIR ?? path.resolve("target");
const app = process.env.REHYDRA_APP ?? path.join(target, "debug", "rehydra-app");
const runs = Number(process.env.RUNS ?? 5);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rehydra-bench-"));
const env = { ...process.env, HOME: tmp, XDG_DATA_HOME: path.join(tmp, "share") };
const driver = await startDriver(env);
const starts = [];
const paints = [];
const renders = { 1000: [], 5000: [] };
try {
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const s = await Session.create(driver.url, app);
    await s.wait('[data-testid="repo-status"]');
    starts.push(performance.now() - t0);
    const fcp = await s.exec("const e = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint'); return e ? e.startTime : null;");
    if (fcp !== null) paints.push(fcp);
    for (const n of Object.keys(renders)) {
      await s.exec("return window.__rehydraBench.renderInventory(200);"); // warm up
      renders[n].push(await s.exec(`return window.__rehydraBench.renderInventory(${n});`));
    }
    await s.close();
  }
} finally {
  driver.proc.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}
const med = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] : NaN);
const f = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");
console.log(`| measure (median of ${runs}) | value |`);
console.log("|---|---|");
console.log(`| cold start → first screen ready (process start to UI rendered, via WebDriver) | ${f(med(starts))} |`);
console.log(`| first contentful paint (from navigation start) | ${f(med(paints))} |`);
console.log(`| inventory table, 1,000 assets (render + commit) | ${f(med(renders[1000]))} |`);
console.log(`| inventory table, 5,000 assets | ${f(med(renders[5000]))} |`);
