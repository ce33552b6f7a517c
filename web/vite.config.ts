import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { transformWithEsbuild } from "vite";
import { defineConfig, type Plugin } from "vitest/config";

const here = fileURLToPath(new URL(".", import.meta.url));

/**
 * Writes dist/sw.js from sw/sw.js once the build is on disk: the list of files to precache
 * (the app shell: index.html, the hashed assets, the manifest and icons) and a version made
 * from their contents, so that every build that changes anything installs a new worker.
 * src/push/payload.ts (the push handling, unit-tested with the app) goes in front of it, made
 * into plain script that defines the global `swPush`.
 */
function serviceWorker(): Plugin {
  let outDir = "dist";
  return {
    name: "homeserver-web:service-worker",
    apply: "build",
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      const files = listFiles(outDir)
        .map((file) => relative(outDir, file).split(sep).join("/"))
        .filter((file) => file !== "sw.js" && !file.endsWith(".map"))
        .sort();
      const hash = createHash("sha256");
      for (const file of files) {
        hash.update(file);
        hash.update(readFileSync(join(outDir, file)));
      }
      const version = hash.digest("hex").slice(0, 16);
      const precache = files.map((file) => "/" + file);
      const pushSource = join(here, "src", "push", "payload.ts");
      const push = await transformWithEsbuild(readFileSync(pushSource, "utf8"), pushSource, {
        loader: "ts",
        format: "iife",
        globalName: "swPush",
        target: "es2022",
      });
      const template = readFileSync(join(here, "sw", "sw.js"), "utf8");
      const worker = (push.code + "\n" + template)
        .replace("self.__SHELL_VERSION__", JSON.stringify(version))
        .replace("self.__SHELL_FILES__", JSON.stringify(precache, null, 2));
      writeFileSync(join(outDir, "sw.js"), worker);
    },
  };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

export default defineConfig({
  base: "/",
  // React's automatic JSX runtime through esbuild: no Babel, no React plugin needed.
  esbuild: { jsx: "automatic" },
  plugins: [serviceWorker()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
    setupFiles: ["src/test/setup.ts"],
  },
});
