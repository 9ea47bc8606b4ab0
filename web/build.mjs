// Builds the page into api/static/: esbuild bundles src/main.ts (with lightweight-charts) into
// app.js, copies style.css as app.css, and writes index.html naming both by content hash (so a
// browser caches them until they change). build-info.json records a hash of every input, which
// tests/unit/test_web_bundle.py recomputes to catch a bundle older than its sources.
//
//   node build.mjs            (scripts/build-web.sh runs npm ci first)

import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const web = dirname(fileURLToPath(import.meta.url));
const out = join(web, "..", "api", "static");

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

// The inputs of the build: the same list and recipe as tests/unit/test_web_bundle.py.
export function sourceHash() {
  const inputs = [
    ...files(join(web, "src")),
    ...["build.mjs", "package.json", "package-lock.json", "tsconfig.json"].map((name) => join(web, name)),
  ]
    .map((path) => relative(web, path).split("\\").join("/"))
    .sort();
  const listing = inputs.map((name) => `${name}\0${sha256(readFileSync(join(web, name)))}\n`).join("");
  return sha256(listing);
}

const result = await esbuild.build({
  entryPoints: [join(web, "src", "main.ts")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  legalComments: "eof",
  write: false,
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
const bundle = result.outputFiles[0].contents;
const css = readFileSync(join(web, "src", "style.css"));
const html = readFileSync(join(web, "src", "index.html"), "utf8")
  .replace("__JS_HASH__", sha256(bundle).slice(0, 12))
  .replace("__CSS_HASH__", sha256(css).slice(0, 12));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "app.js"), bundle);
writeFileSync(join(out, "app.css"), css);
writeFileSync(join(out, "index.html"), html);
const versions = Object.fromEntries(
  ["lightweight-charts", "esbuild"].map((name) => [
    name,
    JSON.parse(readFileSync(join(web, "node_modules", name, "package.json"), "utf8")).version,
  ]),
);
writeFileSync(
  join(out, "build-info.json"),
  `${JSON.stringify({ source_sha256: sourceHash(), packages: versions }, null, 2)}\n`,
);
console.log(`web: built api/static/ (app.js ${bundle.length} bytes)`);
