// Builds the dashboard into dist/, which cloud-server embeds (package web):
//   dist/assets/app-HASH.js, app-HASH.css, favicon-HASH.svg, Leaflet's images
//   dist/assets/THIRD_PARTY_LICENSES.txt  the licences of the bundled packages
//   dist/index.html     the page; cloud-server fills in the tile layer and asset names
//   dist/manifest.json  asset name -> file name with its content hash
//   dist/SOURCES.sha256 the hash of every input (a Go test compares it with the
//                       sources, so a change not rebuilt with `make web` fails)
// Run by `make web` (npm ci, the type check, then this).
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import * as esbuild from "esbuild";

const dist = "dist";
const assets = join(dist, "assets");
// Bundled packages, whose licences ship beside the bundle.
const thirdParty = ["leaflet", "uplot"];

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: assets,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".png": "file", ".svg": "file" },
  legalComments: "none",
  banner: { js: "/* Fleetgate dashboard. Bundled: " + thirdParty.join(", ") + "; their licences: THIRD_PARTY_LICENSES.txt */", css: "/* Fleetgate dashboard. Bundled: leaflet, uplot styles; licences: THIRD_PARTY_LICENSES.txt */" },
  metafile: true,
  logLevel: "warning",
});

const manifest = {};
for (const out of Object.keys(result.metafile.outputs)) {
  const file = basename(out);
  const m = /^(.*)-[A-Z0-9]{8}(\.[a-z]+)$/.exec(file);
  if (m) {
    manifest[m[1] + m[2]] = file;
  }
}

const icon = readFileSync("src/favicon.svg");
const iconName = "favicon-" + createHash("sha256").update(icon).digest("hex").slice(0, 8).toUpperCase() + ".svg";
writeFileSync(join(assets, iconName), icon);
manifest["favicon.svg"] = iconName;

let licences = "";
for (const pkg of thirdParty) {
  const dir = join("node_modules", pkg);
  const { version, license } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  licences += `${pkg} ${version} (${license})\n\n${readFileSync(join(dir, file), "utf8").trim()}\n\n`;
}
writeFileSync(join(assets, "THIRD_PARTY_LICENSES.txt"), licences);

copyFileSync("src/index.html", join(dist, "index.html"));
writeFileSync(join(dist, "manifest.json"), JSON.stringify(manifest, Object.keys(manifest).sort(), 2) + "\n");
writeFileSync(join(dist, "SOURCES.sha256"), sourcesHash() + "\n");

for (const [name, file] of Object.entries(manifest)) {
  console.log(`${name.padEnd(14)} ${file.padEnd(24)} ${(statSync(join(assets, file)).size / 1024).toFixed(1)} KiB`);
}

// sourcesHash hashes every input of the build: the files of src/ and the
// build's own files, by path in byte order, as "path\0content\0" (the Go
// test in this directory computes the same).
function sourcesHash() {
  const files = ["build.mjs", "package.json", "package-lock.json", "tsconfig.json"];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = dir + "/" + e.name;
      e.isDirectory() ? walk(p) : files.push(p);
    }
  };
  walk("src");
  files.sort(); // the paths are ASCII: code-unit order is byte order
  const h = createHash("sha256");
  for (const f of files) {
    h.update(f + "\0");
    h.update(readFileSync(f));
    h.update("\0");
  }
  return h.digest("hex");
}
