#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU execution provider) on an exported bench model.
//
//   node bench/peers/ort_bench.js MODEL.onnx [--batch N] [--threads T] [--iterations K]
//        [--warmup W] [--json]
//     Same measurements and JSON keys as `hubimg bench --json`: load_ms (session creation,
//     graph optimisation included), first_call_ms, median_ms, p90_ms, images_per_second,
//     peak_rss_mb, batch, threads. W untimed calls (default 1) follow the first call.
//   node bench/peers/ort_bench.js MODEL.onnx --run IN.npy --out OUT.npy [--threads T]
//     Runs the model once on a float32 .npy (NHWC) and writes the logits as .npy.
//
// Session: graphOptimizationLevel 'all', intraOpNumThreads T (default 2), interOpNumThreads 1,
// sequential execution. The input is NHWC float32 in [0, 1] from a seeded generator; the graph's
// own first node transposes it to NCHW, and that is timed (it is part of the model).
'use strict';

const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dir = path.join(__dirname, 'node_modules', 'onnxruntime-node');
  try {
    return require(dir);
  } catch (e) {
    console.error(
        `ort_bench: onnxruntime-node is not installed under ${path.dirname(dir)} ` +
        `(run bench/setup_peers.sh): ${e.message}`);
    process.exit(1);
  }
}

function parseArgs(argv) {
  const a = {batch: 1, threads: 2, iterations: 20, warmup: 1, json: false};
  const rest = [];
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      return argv[++i];
    };
    const int = () => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) usage(`${k} wants a non-negative integer`);
      return v;
    };
    if (k === '--batch') a.batch = int();
    else if (k === '--threads') a.threads = int();
    else if (k === '--iterations') a.iterations = int();
    else if (k === '--warmup') a.warmup = int();
    else if (k === '--json') a.json = true;
    else if (k === '--run') a.run = value();
    else if (k === '--out') a.out = value();
    else if (k.startsWith('-')) usage(`unknown option ${k}`);
    else rest.push(k);
  }
  if (rest.length !== 1) usage('one MODEL.onnx expected');
  a.model = rest[0];
  if (a.batch < 1 || a.iterations < 1) usage('--batch and --iterations must be at least 1');
  if (a.run && !a.out) usage('--run needs --out');
  return a;
}

function usage(message) {
  console.error(`ort_bench: ${message}`);
  console.error(
      'usage: ort_bench.js MODEL.onnx [--batch N] [--threads T] [--iterations K] ' +
      '[--warmup W] [--json] | MODEL.onnx --run IN.npy --out OUT.npy');
  process.exit(2);
}

// Minimal .npy (version 1/2, little-endian float32, C order).
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: want little-endian float32 in C order, header ${header}`);
  }
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').map((s) => s.trim())
                    .filter((s) => s.length)
                    .map(Number);
  const offset = start + headerLen;
  const count = shape.reduce((x, y) => x * y, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = buf.readFloatLE(offset + 4 * i);
  return {shape, data};
}

function writeNpy(file, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${
      shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; ++i) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

// mulberry32: a small seeded generator, so every run feeds the same images.
function seededUniform(count, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; ++i) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(args.model)) {
    console.error(`ort_bench: ${args.model} does not exist (bench/peers/export_onnx.py makes it)`);
    process.exit(1);
  }
  const ort = loadOrt();
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  let t = nowMs();
  const session = await ort.InferenceSession.create(args.model, options);
  const loadMs = nowMs() - t;
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];

  if (args.run) {
    const x = readNpy(args.run);
    const result = await session.run({[inputName]: new ort.Tensor('float32', x.data, x.shape)});
    const y = result[outputName];
    writeNpy(args.out, y.dims, y.data);
    console.log(`${outputName} float32[${y.dims.join(', ')}] -> ${args.out}`);
    return;
  }

  // The model's static input shape [batch, H, W, C] from the ONNX graph is not exposed by the
  // node API in every version; the bench models are all 224x224x3.
  const dims = [args.batch, 224, 224, 3];
  const feeds = {
    [inputName]: new ort.Tensor('float32', seededUniform(dims.reduce((x, y) => x * y, 1), 1234), dims),
  };
  t = nowMs();
  await session.run(feeds);
  const firstMs = nowMs() - t;
  for (let i = 0; i < args.warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < args.iterations; ++i) {
    t = nowMs();
    await session.run(feeds);
    times.push(nowMs() - t);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)];
  const p90 = times[Math.min(times.length - 1, Math.floor((times.length * 9) / 10))];
  const out = {
    load_ms: loadMs,
    first_call_ms: firstMs,
    median_ms: median,
    p90_ms: p90,
    images_per_second: (args.batch * 1000) / median,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,  // KiB on Linux
    batch: args.batch,
    threads: args.threads,
    engine: 'onnxruntime',
    version: ort.env.versions.node,
  };
  if (args.json) {
    console.log(JSON.stringify(out, null, 2));
  } else {
    console.log(
        `load ${loadMs.toFixed(1)} ms, first call ${firstMs.toFixed(1)} ms\n` +
        `per batch of ${args.batch}: median ${median.toFixed(2)} ms, p90 ${p90.toFixed(2)} ms ` +
        `(${args.iterations} iterations)\n${out.images_per_second.toFixed(1)} images/s, ` +
        `peak RSS ${out.peak_rss_mb.toFixed(0)} MB`);
  }
}

main().catch((e) => {
  console.error(`ort_bench: ${e.stack || e}`);
  process.exit(1);
});
