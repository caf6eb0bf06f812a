import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { App } from "./App";
import { createApi } from "./api/client";
import { AuthProvider } from "./auth/AuthContext";
import { ConfigContext, loadConfig } from "./config";
import "./index.css";

const root = createRoot(document.getElementById("root") as HTMLElement);

loadConfig()
  .then((config) => {
    const api = createApi(config.gatewayUrl);
    root.render(
      <StrictMode>
        <ConfigContext.Provider value={config}>
          <BrowserRouter>
            <AuthProvider api={api}>
              <App />
            </AuthProvider>
          </BrowserRouter>
        </ConfigContext.Provider>
      </StrictMode>,
    );
  })
  .catch((error: unknown) => {
    root.render(
      <div role="alert" className="mx-auto mt-24 max-w-md rounded-xl bg-white p-6 text-sm shadow ring-1 ring-red-200">
        <h1 className="text-base font-semibold text-red-700">PixelFlow could not start</h1>
        <p className="mt-2 text-slate-600">
          The UI could not read its configuration (/config.json): {error instanceof Error ? error.message : String(error)}
        </p>
      </div>,
    );
  });
