/**
 * `npm run build` (after tsc): volgate's daemon as one ES module, dist/bundle/volgate.mjs, which is
 * what the plugin rootfs, the host install, the tests and the benchmarks run. Everything it imports
 * is inlined, so it needs no node_modules. Run by Node 24 itself (type stripping): node scripts/bundle.ts
 *
 * The files beside it, all in one flat directory (each file finds the others from its own URL):
 * - chunk-*.mjs: what src/ imports dynamically (the SSH and S3 preflights, with ssh2 and the AWS SDK),
 *   split out so start-up never parses them; loaded on a backend's first preflight;
 * - etcd3-proto/: the etcd client reads its gRPC definitions from files at run time (catalog mode only);
 * - thread-stream-worker.mjs, pino-pretty.mjs: pino's pretty log transport runs in a worker thread
 *   that loads files by path; globalThis.__bundlerPathsOverrides (pino's documented bundling hook)
 *   points pino at them.
 */
import { cp, readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const repo = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${repo}dist/bundle`;

/** Bundled CommonJS (fastify, pino, ssh2, ...) calls require() and reads __dirname: give ESM both. */
const banner = `import { createRequire as __volgateRequire } from "node:module";
import { fileURLToPath as __volgatePath } from "node:url";
const require = __volgateRequire(import.meta.url);
const __filename = __volgatePath(import.meta.url);
const __dirname = __volgatePath(new URL(".", import.meta.url));
globalThis.__bundlerPathsOverrides ??= {
  "thread-stream-worker": __volgatePath(new URL("./thread-stream-worker.mjs", import.meta.url)),
  "pino-pretty": __volgatePath(new URL("./pino-pretty.mjs", import.meta.url)),
};`;

/** etcd3 loads `${__dirname}/../proto/rpc.proto`: in the bundle, that is etcd3-proto/ beside it. */
const DIRNAME = "$" + "{__dirname}";
const ETCD_PROTO = `\`${DIRNAME}/../proto/rpc.proto\``;
const etcdProto = {
  name: "etcd3-proto",
  setup(b: { onLoad: (o: { filter: RegExp }, f: (a: { path: string }) => Promise<object>) => void }) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async ({ path }) => {
      const text = await readFile(path, "utf8");
      if (!text.includes(ETCD_PROTO))
        throw new Error(`${path} no longer loads ${ETCD_PROTO}: update scripts/bundle.ts`);
      return { contents: text.replace(ETCD_PROTO, `\`${DIRNAME}/etcd3-proto/rpc.proto\``), loader: "js" };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: repo,
  entryPoints: {
    volgate: "src/main.ts",
    "thread-stream-worker": "node_modules/thread-stream/lib/worker.js",
    "pino-pretty": "node_modules/pino-pretty/index.js",
  },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunk-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  minify: true,
  keepNames: true, // error classes and stack traces keep their names
  legalComments: "linked", // third-party licence notices ship beside the code, in *.LEGAL.txt
  // ssh2's optional native parts (never built here: allowScripts): it falls back to JavaScript.
  external: ["cpu-features", "*.node"],
  banner: { js: banner },
  metafile: true,
  logLevel: "warning",
  plugins: [etcdProto],
});
await cp(`${repo}node_modules/etcd3/proto`, `${outdir}/etcd3-proto`, { recursive: true });

const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith(".mjs"))
  .map(([file, out]) => `${file.slice(file.lastIndexOf("/") + 1)} ${(out.bytes / 1024).toFixed(0)} KiB`);
console.log(`bundle: dist/bundle/ (${sizes.join(", ")})`);
