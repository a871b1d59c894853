// Measurement hooks for ui/e2e/bench.mjs (benchmarks, not tests): render the inventory
// table with n synthetic assets off-screen and return the milliseconds it took.
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import type { InventoryAsset } from "./ipc";
import { InventoryTable } from "./screens/Inventory";

export function syntheticAssets(n: number): InventoryAsset[] {
  const out: InventoryAsset[] = [];
  const clusters = Math.max(1, Math.floor(n / 250));
  for (let c = 0; c < clusters; c++) {
    out.push({ id: `cluster/${c}`, name: `hci-${c}`, kind: "cluster", parent: null, plugin: "hyperv-vm", flags: [], restore_points: 0, last_backup: null, age_hours: null, status: "container", risks: [] });
  }
  for (let i = out.length; i < n; i++) {
    const stale = i % 7 === 0;
    out.push({
      id: `vm-${i}`,
      name: `vm-${String(i).padStart(4, "0")}`,
      kind: "vm",
      parent: `cluster/${i % clusters}`,
      plugin: "hyperv-vm",
      flags: i % 5 === 0 ? ["trusted-launch"] : i % 3 === 0 ? ["arc-managed"] : [],
      restore_points: i % 11,
      last_backup: new Date().toISOString(),
      age_hours: stale ? 40 : 3,
      status: i % 11 === 0 ? "unprotected" : stale ? "stale" : "protected",
      risks: i % 5 === 0 ? [{ code: "tvm-key-missing", title: "Trusted launch VM without a key backup" }] : [],
    });
  }
  return out;
}

export function renderInventory(n: number): number {
  const host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  const assets = syntheticAssets(n);
  const t0 = performance.now();
  flushSync(() => root.render(<InventoryTable assets={assets} query="" filter="all" />));
  const ms = performance.now() - t0;
  root.unmount();
  host.remove();
  return ms;
}

declare global {
  interface Window {
    __rehydraBench?: { renderInventory: (n: number) => number };
  }
}

window.__rehydraBench = { renderInventory };
