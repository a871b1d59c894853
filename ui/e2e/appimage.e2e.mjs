// The AppImage end to end: a copy of the packaged AppImage (scripts/package.sh) started
// through tauri-driver and WebKitWebDriver under Xvfb, as the AppImage's runtime starts
// it (extracted and run, so it needs no FUSE here), asks a manifest served on loopback for
// updates (the updates part of app.e2e.mjs serves it). An AppImage signed with another key
// is refused and the copy stays as it was; a properly signed one replaces the copy's file,
// executable still, and nothing else is left beside it.
//
// Run: xvfb-run -a node ui/e2e/appimage.e2e.mjs dist/Rehydra-VERSION-x86_64.AppImage
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { Session, startDriver } from "./webdriver.mjs";
import { updateServer } from "./updates.mjs";

const packaged = process.argv[2];
if (!packaged || !fs.existsSync(packaged)) throw new Error(`usage: appimage.e2e.mjs PATH.AppImage (${packaged ?? "none given"} does not exist)`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rehydra-appimage-e2e-"));
const home = path.join(tmp, "home");
const bin = path.join(tmp, "bin");
fs.mkdirSync(home);
fs.mkdirSync(bin);
// the admin's copy, which the update replaces
const image = path.join(bin, "Rehydra.AppImage");
fs.copyFileSync(packaged, image);
fs.chmodSync(image, 0o755);
const hash = (f) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
const before = hash(image);

const u = await updateServer(tmp);
const env = { ...process.env, ...u.env, HOME: home, XDG_DATA_HOME: path.join(home, ".local/share"), XDG_CACHE_HOME: path.join(home, ".cache"), APPIMAGE_EXTRACT_AND_RUN: "1", TMPDIR: path.join(tmp, "t") };
// (the runtime extracts into TMPDIR; the driver's ending the app may leave that behind)
fs.mkdirSync(env.TMPDIR);
delete env.REHYDRA_CATALOG;
delete env.REHYDRA_PLUGIN_PATH;
// the new version: an AppImage (an ELF) unlike the installed one
const newer = Buffer.concat([fs.readFileSync(packaged), Buffer.from("\nRehydra 9.9.9\n")]);
u.files.set("/Rehydra-9.9.9-x86_64.AppImage", newer);
const sign = (key, version) => {
  const f = path.join(u.dir, `payload-${crypto.randomUUID()}`);
  fs.writeFileSync(f, newer);
  execFileSync("minisign", ["-S", "-s", key, "-m", f, "-x", `${f}.minisig`, "-t", `timestamp:1\tfile:Rehydra-9.9.9-x86_64.AppImage\tversion:${version}`], { stdio: "ignore" });
  return fs.readFileSync(`${f}.minisig`).toString("base64");
};
const offer = (signature) =>
  u.files.set("/latest.json", JSON.stringify({ version: "9.9.9", notes: "Faster restores", pub_date: "2026-12-01T10:00:00Z", platforms: { "linux-x86_64-appimage": { url: `${u.base}/Rehydra-9.9.9-x86_64.AppImage`, signature } } }));
const otherPub = path.join(tmp, "other.pub");
const otherKey = path.join(tmp, "other.key");
execFileSync("minisign", ["-G", "-W", "-p", otherPub, "-s", otherKey], { stdio: "ignore" });

const driver = await startDriver(env);
let s;
let failed = false;
const check = (cond, msg) => {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok - ${msg}`);
};
const install = async (says) => {
  await s.click('[data-testid="update-check"]');
  await s.wait('[data-testid="update-available"]', (x) => x.includes("9.9.9"), 60000);
  const manual = await s.findAll('[data-testid="update-manual"]');
  check(manual.length === 0, `the AppImage's app offers to install an update itself${manual.length ? ` (it says: ${await s.text(manual[0])})` : ""}`);
  await s.click('[data-testid="update-install"]');
  const sel = says === "installed" ? '[data-testid="update-done"]' : '[data-testid="updates"] [data-testid="error"]';
  return s.text(await s.wait(sel, (x) => x.includes(says), 120000));
};
try {
  // the app is the AppImage's: extracting a debug build's image takes a while
  s = await Session.create(driver.url, image);
  await s.wait('[data-testid="repo-status"]', undefined, 120000);
  await s.click('[data-testid="nav-settings"]');
  offer(sign(otherKey, "9.9.9"));
  const refused = await install("not signed with this build's key");
  check(hash(image) === before, `an AppImage signed with another key is refused and the installed one is left as it was (${refused.slice(0, 100)})`);
  offer(sign(u.key, "9.9.9"));
  const done = await install("installed");
  check(hash(image) === crypto.createHash("sha256").update(newer).digest("hex"), `a properly signed AppImage replaces the one the app runs from (${done})`);
  check((fs.statSync(image).mode & 0o777) === 0o755, "the replaced AppImage is executable as the old one was");
  check(JSON.stringify(fs.readdirSync(bin)) === JSON.stringify(["Rehydra.AppImage"]), `nothing else is left beside it (${fs.readdirSync(bin)})`);
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.message}`);
} finally {
  if (s) await s.close();
  driver.proc.kill();
  u.close();
  fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 10 });
}
process.exit(failed ? 1 : 0);
