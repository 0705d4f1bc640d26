// The programs (four services, the sandbox, the CLI) as one file each, built by esbuild straight from
// the TypeScript sources: each workspace package's exports carry a "source" condition that points at
// src/. `npm start` therefore needs no `tsc` build (minutes on a 2-core machine; seconds here), the
// tests start the very files `npm start` and the image run, and types are checked by `tsc` in
// `npm run typecheck` and `npm test`'s build.
//
// Usage: node scripts/bundle.mjs [name ...]   (every program when no name is given)
//        node scripts/bundle.mjs --up-to-date  exit 0 when every bundle is newer than all its inputs, else 1
//        node scripts/bundle.mjs --list        the bundles' paths, one a line (scripts/assemble-image.sh)
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Each program with its npm dependencies in the file: the CLI answers in a fraction of the time when
 * Node reads one module instead of hundreds, and the image needs no node_modules (scripts/assemble-image.sh).
 */
const PROGRAMS = {
  ingress: { entry: "services/ingress/src/main.ts", outfile: "services/ingress/dist/ingress.mjs" },
  ordering: { entry: "services/ordering/src/main.ts", outfile: "services/ordering/dist/ordering.mjs" },
  processor: { entry: "services/processor/src/main.ts", outfile: "services/processor/dist/processor.mjs" },
  reconciler: { entry: "services/reconciler/src/main.ts", outfile: "services/reconciler/dist/reconciler.mjs" },
  sandbox: { entry: "packages/sandbox/src/main.ts", outfile: "packages/sandbox/dist/sandbox.mjs" },
  cli: { entry: "packages/cli/src/main.ts", outfile: "packages/cli/dist/qbo-webhooks.mjs" },
};

/**
 * Fails the build when our code imports, at run time, a package its package.json does not list in
 * `dependencies` (a dev dependency, or one only hoisted there by another workspace): bundled, it would
 * work by accident here and be missing from what the package declares.
 */
const declaredDependenciesOnly = {
  name: "declared-dependencies-only",
  setup(esbuild) {
    const manifests = new Map();
    const manifestOf = (file) => {
      let dir = dirname(file);
      while (!manifests.has(dir)) {
        try {
          manifests.set(dir, JSON.parse(readFileSync(join(dir, "package.json"), "utf8")));
        } catch {
          const parent = dirname(dir);
          if (parent === dir) return undefined;
          dir = parent;
        }
      }
      return manifests.get(dir);
    };
    esbuild.onResolve({ filter: /^[^./]/ }, ({ path, importer }) => {
      if (!importer || importer.includes("/node_modules/") || path.startsWith("node:") || builtinModules.includes(path))
        return undefined;
      const name = path
        .split("/")
        .slice(0, path.startsWith("@") ? 2 : 1)
        .join("/");
      const manifest = manifestOf(importer);
      if (!manifest || name === manifest.name || name in (manifest.dependencies ?? {})) return undefined;
      return {
        errors: [
          {
            text: `${manifest.name} imports ${name} at run time, but its package.json does not list it in dependencies`,
          },
        ],
      };
    });
  },
};

const outfiles = Object.values(PROGRAMS).map((program) => join(root, program.outfile));
if (process.argv[2] === "--list") {
  console.log(outfiles.join("\n"));
  process.exit(0);
}
if (process.argv[2] === "--up-to-date") process.exit(upToDate() ? 0 : 1);

/** Whether no source, manifest, the lockfile or this script is newer than the oldest bundle. */
function upToDate() {
  if (!outfiles.every((file) => existsSync(file))) return false;
  const oldest = Math.min(...outfiles.map((file) => statSync(file).mtimeMs));
  const workspaces = ["packages", "services"].flatMap((group) =>
    readdirSync(join(root, group)).map((name) => join(root, group, name)),
  );
  const inputs = [
    fileURLToPath(import.meta.url),
    join(root, "package-lock.json"),
    ...workspaces.map((dir) => join(dir, "package.json")),
    ...workspaces.flatMap((dir) =>
      existsSync(join(dir, "src"))
        ? readdirSync(join(dir, "src"), { recursive: true }).map((file) => join(dir, "src", String(file)))
        : [],
    ),
  ];
  return inputs.every((file) => !existsSync(file) || statSync(file).mtimeMs <= oldest);
}

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(name in PROGRAMS));
if (unknown.length > 0) {
  console.error(`bundle: no program ${unknown.join(", ")}; the programs are ${Object.keys(PROGRAMS).join(", ")}`);
  process.exit(2);
}
const names = asked.length > 0 ? asked : Object.keys(PROGRAMS);
// One build for every program asked: the modules they share (NATS, zod, OpenTelemetry…) are read once.
await build({
  entryPoints: Object.fromEntries(
    names.map((name) => [PROGRAMS[name].outfile.replace(/\.mjs$/, ""), join(root, PROGRAMS[name].entry)]),
  ),
  outdir: root,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["source"],
  sourcemap: true,
  // Without comments and spaces a bundle is pure ASCII and 2/3 the size: V8 keeps a program's source
  // in memory, as a two-byte string (twice the bytes) when one comment has an "—" or "§" in it, so the
  // reconciler's 6 MB bundle took 13 MB of the heap (4 MB now). Names are kept (no identifier renaming): stack
  // traces still name functions, and the source map beside each bundle gives lines.
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [declaredDependenciesOnly],
  // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: "warning",
  // esbuild has printed each error with its place; the stack trace of its summary would only hide them.
}).catch(() => process.exit(1));
