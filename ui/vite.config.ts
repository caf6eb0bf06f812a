import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

// The gateway's address is not built in: the app reads /config.json at start. In production
// infra/ui_server.py serves it; `npm run dev` serves it from here (PIXELFLOW_GATEWAY_URL, and
// PIXELFLOW_MAX_UPLOAD_BYTES if set: the UI falls back to 25 MiB otherwise).
function devConfig(): Plugin {
  const gatewayUrl = process.env.PIXELFLOW_GATEWAY_URL ?? "http://127.0.0.1:8080";
  const maxUploadBytes = process.env.PIXELFLOW_MAX_UPLOAD_BYTES ? Number(process.env.PIXELFLOW_MAX_UPLOAD_BYTES) : undefined;
  return {
    name: "pixelflow-dev-config",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use("/config.json", (_req, res) => {
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ gatewayUrl, maxUploadBytes }));
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), tailwindcss(), devConfig()],
  build: {
    target: "es2022",
    sourcemap: true,
  },
  server: {
    host: "127.0.0.1",
    port: 3000,
    strictPort: true,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
