import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Tauri serves the built files from `dist`; the dev server is only for `tauri dev`.
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: { target: "es2021", outDir: "dist", emptyOutDir: true },
});
