// A minimal W3C WebDriver client over fetch (Node 20), enough to drive the Tauri app
// through tauri-driver → WebKitWebDriver. No dependencies.
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import net from "node:net";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Start tauri-driver on a free port; resolves once it accepts connections. */
export async function startDriver(env) {
  const port = await freePort();
  const nativePort = await freePort();
  const proc = spawn(
    process.env.TAURI_DRIVER ?? "tauri-driver",
    ["--port", String(port), "--native-port", String(nativePort), "--native-driver", process.env.WEBKIT_DRIVER ?? "/usr/bin/WebKitWebDriver"],
    { env, stdio: ["ignore", "inherit", "inherit"] },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${url}/status`);
      return { proc, url };
    } catch {
      await sleep(100);
    }
  }
  proc.kill();
  throw new Error("tauri-driver did not start");
}

export class Session {
  constructor(url, id) {
    this.url = url;
    this.id = id;
  }

  static async create(url, application) {
    const r = await fetch(`${url}/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application } } } }),
    });
    const j = await r.json();
    if (!j.value?.sessionId) throw new Error(`no session: ${JSON.stringify(j)}`);
    return new Session(url, j.value.sessionId);
  }

  async cmd(method, path, body) {
    const r = await fetch(`${this.url}/session/${this.id}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const j = await r.json();
    if (j.value && j.value.error) throw new Error(`${method} ${path}: ${j.value.error}: ${j.value.message}`);
    return j.value;
  }

  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  /** Wait until `css` exists (and `check(text)` holds, when given); returns the element. */
  async wait(css, check, timeoutMs = 20000) {
    const until = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < until) {
      try {
        const el = await this.find(css);
        if (!check) return el;
        last = await this.text(el);
        if (check(last)) return el;
      } catch {
        // not there yet
      }
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${css}${last ? ` (last text: ${last})` : ""}`);
  }

  /** Scroll an element to the middle of its scrolling container (the UI scrolls `main`). */
  async reveal(el) {
    await this.exec("arguments[0].scrollIntoView({ block: 'center' });", [{ [ELEMENT]: el }]);
  }

  async click(css) {
    const el = typeof css === "string" ? await this.wait(css) : css;
    await this.reveal(el);
    await this.cmd("POST", `/element/${el}/click`, {});
  }

  async type(css, text, { clear = true } = {}) {
    const el = await this.wait(css);
    await this.reveal(el);
    // A WebDriver clear fires no input event, so React's state keeps the old value; a
    // re-render between the clear and the keys puts it back in front of the new text.
    // Cleared and typed again then, three times at most.
    for (let tries = 0; tries < 3; tries++) {
      if (clear) await this.cmd("POST", `/element/${el}/clear`, {});
      // WebKitWebDriver types "\n" as nothing: send the Enter key, which a textarea turns into a newline
      await this.cmd("POST", `/element/${el}/value`, { text: text.replace(/\n/g, "\uE007") });
      if (!clear || (await this.cmd("GET", `/element/${el}/property/value`)) === text) return;
    }
  }

  /** Press keys (WebDriver key codes, e.g. "\uE004" Tab, "\uE007" Enter) on the focused element. */
  async keys(...keys) {
    const actions = keys.flatMap((k) => [{ type: "keyDown", value: k }, { type: "keyUp", value: k }]);
    await this.cmd("POST", "/actions", { actions: [{ type: "key", id: "keyboard", actions }] });
  }

  async text(el) {
    return this.cmd("GET", `/element/${el}/text`);
  }

  async enabled(css) {
    return this.cmd("GET", `/element/${await this.find(css)}/enabled`);
  }

  async exec(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  async screenshot() {
    return Buffer.from(await this.cmd("GET", "/screenshot"), "base64");
  }

  async close() {
    try {
      await fetch(`${this.url}/session/${this.id}`, { method: "DELETE" });
    } catch {
      // already gone
    }
  }
}
