// The app's end-to-end test, updates part: Tauri's updater against a manifest served on
// loopback, with installers signed by a minisign key made for the test (minisign from
// Debian, the tool a release is signed with). A newer version is offered with its notes;
// Install refuses an installer whose signature is not the key's, and one signed for
// another version than the manifest claims; a properly signed one passes the check and is
// then not installed, because this copy was not installed from a package (the app binary
// is left as it was); an older version is not offered.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { execFileSync } from "node:child_process";

/** Started before the app, whose environment gets `env` (a debug build reads its update
 *  source from there; a release only from its build). */
export async function updateServer(tmp) {
  const dir = path.join(tmp, "updates");
  fs.mkdirSync(dir, { recursive: true });
  const [pub, key] = [path.join(dir, "update.pub"), path.join(dir, "update.key")];
  execFileSync("minisign", ["-G", "-W", "-p", pub, "-s", key], { stdio: "ignore" });
  const files = new Map();
  const server = http.createServer((req, res) => {
    const body = files.get(req.url.split("?")[0]);
    res.writeHead(body ? 200 : 404, { "content-type": "application/octet-stream" });
    res.end(body ?? "");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  const env = { REHYDRA_UPDATE_URL: `${base}/latest.json`, REHYDRA_UPDATE_PUBKEY: fs.readFileSync(pub).toString("base64") };
  const keyId = fs.readFileSync(pub, "utf8").split("\n")[0].split(" ").pop();
  return { dir, key, files, base, env, keyId, close: () => server.close() };
}

/** `t`: the test's session `s`, `app` (the binary's path), `check`, `shot`; `u`: the server. */
export async function updates(t, u) {
  const { s, check } = t;
  const sign = (bytes, version) => {
    const f = path.join(u.dir, `payload-${crypto.randomUUID()}`);
    fs.writeFileSync(f, bytes);
    execFileSync("minisign", ["-S", "-s", u.key, "-m", f, "-x", `${f}.minisig`, "-t", `timestamp:1\tfile:rehydra\tversion:${version}`], { stdio: "ignore" });
    return fs.readFileSync(`${f}.minisig`).toString("base64");
  };
  const installer = Buffer.from("the installer of Rehydra 9.9.9");
  u.files.set("/rehydra-9.9.9.deb", installer);
  const offer = (version, signature) =>
    u.files.set("/latest.json", JSON.stringify({ version, notes: "Faster restores", pub_date: "2026-12-01T10:00:00Z", platforms: { "linux-x86_64": { url: `${u.base}/rehydra-9.9.9.deb`, signature } } }));
  const appHash = () => crypto.createHash("sha256").update(fs.readFileSync(t.app)).digest("hex");
  const before = appHash();
  await s.click('[data-testid="nav-settings"]');
  const install = async (says) => {
    await s.click('[data-testid="update-check"]');
    await s.wait('[data-testid="update-available"]', (x) => x.includes("9.9.9") && x.includes("Faster restores"));
    await s.click('[data-testid="update-install"]');
    return s.text(await s.wait('[data-testid="updates"] [data-testid="error"]', (x) => x.includes(says), 60000));
  };
  offer("9.9.9", sign(Buffer.from("something else"), "9.9.9"));
  const view = await s.text(await s.wait('[data-testid="updates"]'));
  await install("not signed with this build's key");
  const shown = await s.text(await s.wait('[data-testid="update-view"]'));
  check(shown.includes(u.keyId) && shown.includes(u.env.REHYDRA_UPDATE_URL) && !view.includes("9.9.9"),
    `Settings names where updates come from and the key they must be signed with (${u.keyId}), and offers 9.9.9 with its notes`);
  check(true, "an installer whose signature is not the build's key is refused before anything is installed");
  offer("9.9.9", sign(installer, "0.0.9"));
  const wrongVersion = await install("version");
  check(/0\.0\.9/.test(wrongVersion), `an installer signed for another version than the manifest claims is refused (${wrongVersion.slice(0, 160)})`);
  offer("9.9.9", sign(installer, "9.9.9"));
  const manual = await install("not installed from Rehydra's packages");
  check(appHash() === before, `a properly signed installer passes the check, and a copy not installed from a package is not replaced (${manual.slice(0, 120)})`);
  offer("0.0.1", sign(installer, "0.0.1"));
  await s.click('[data-testid="update-check"]');
  await s.wait('[data-testid="update-none"]', (x) => x.includes("newest"));
  check(true, "an older version is not offered");
  await t.shot("14-updates");
}
