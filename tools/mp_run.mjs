// Runs Python code under real MicroPython (the WebAssembly build from npm).
//
// stdin: JSON {"files": {"/abs/path.py": "source", ...}, "binary_files": {"/abs/x.mpy": "base64"},
//              "code": "...", "heapsize": bytes}
// stdout: what the code printed; exit status 1 when it raised.
// The WebAssembly port has no disk access, so every module it needs is
// copied into its in-memory file system first.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const mp = await loadMicroPython({
  heapsize: job.heapsize || 8 * 1024 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function mkdirs(path) {
  let sofar = "";
  for (const part of path.split("/").slice(1, -1)) {
    sofar += "/" + part;
    try { mp.FS.mkdir(sofar); } catch (e) { /* exists */ }
  }
}
for (const [path, text] of Object.entries(job.files || {})) {
  mkdirs(path);
  mp.FS.writeFile(path, text);
}
// Binary files (compiled .mpy modules), base64-encoded.
for (const [path, b64] of Object.entries(job.binary_files || {})) {
  mkdirs(path);
  mp.FS.writeFile(path, Buffer.from(b64, "base64"));
}
// "then": further code run in separate runPython calls (globals persist). Only
// between calls does gc.collect() free everything: within one call, stale
// pointers on the WebAssembly stack keep garbage alive, which a heap
// measurement must not count.
try {
  mp.runPython(job.code);
  for (const code of job.then || []) mp.runPython(code);
} catch (e) {
  process.stderr.write(String(e.message || e) + "\n");
  process.exitCode = 1;
}
