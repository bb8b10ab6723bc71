// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {string: string}},
// then the raw little-endian tensor bytes. Read with the same checks as the reference library:
// offsets inside the buffer, no gaps or overlaps, sizes matching dtype × shape.

import * as fs from 'node:fs';
import { UserError } from '../errors';
import { writeFileAtomic } from './fsx';

export type StDtype = 'F64' | 'F32' | 'I64' | 'I32' | 'U8' | 'BOOL';
export type StData = Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array;

export interface StTensor {
  dtype: StDtype;
  shape: number[];
  data: StData;
}

const BYTES: Record<string, number> = { F64: 8, F32: 4, I64: 8, I32: 4, U8: 1, BOOL: 1, F16: 2, BF16: 2, I16: 2, I8: 1, U16: 2, U32: 4, U64: 8 };

function view(dtype: StDtype, bytes: Uint8Array): StData {
  // copy into a fresh, aligned buffer
  const buf = Uint8Array.prototype.slice.call(bytes).buffer; // (Buffer#slice would be a view)
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf);
    case 'F32':
      return new Float32Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
  }
}

export function dtypeOf(data: StData): StDtype {
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

export function encodeSafetensors(tensors: Record<string, StTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape}]`);
    const size = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // pad the header so the data starts 8-byte aligned, as the reference writer does
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(buf: Uint8Array, file: string): { tensors: Record<string, StTensor>; metadata: Record<string, string> } {
  const bad = (why: string) =>
    new UserError(`not a valid safetensors file: ${why}`, { file }, 'save checkpoints with `gatelab train --save` or safetensors.torch.save_file');
  if (buf.length < 8) throw bad('shorter than its 8-byte header length');
  const n = Number(new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true));
  if (n > buf.length - 8 || n > 100_000_000) throw bad(`header length ${n} exceeds the file`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(Buffer.from(buf.subarray(8, 8 + n)).toString('utf8'));
  } catch {
    throw bad('the header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, StTensor> = {};
  const spans: [number, number, string][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries(info ?? {})) if (typeof v === 'string') metadata[k] = v;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) throw bad(`tensor ${name} has unknown dtype ${dtype}`);
    if (!['F64', 'F32', 'I64', 'I32', 'U8', 'BOOL'].includes(dtype))
      throw bad(`tensor ${name} has dtype ${dtype}; Gatelab reads F32, F64, I64, I32, U8 and BOOL`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`tensor ${name} has a bad shape`);
    if (!Array.isArray(data_offsets) || data_offsets.length !== 2) throw bad(`tensor ${name} has bad data_offsets`);
    const [b, e] = data_offsets;
    const count = shape.reduce((a, d) => a * d, 1);
    if (!(Number.isInteger(b) && Number.isInteger(e) && b >= 0 && e <= dataLen && e - b === count * BYTES[dtype]))
      throw bad(`tensor ${name}: data_offsets [${b}, ${e}] do not fit dtype ${dtype} × shape [${shape}] in ${dataLen} data bytes`);
    spans.push([b, e, name]);
    tensors[name] = { dtype: dtype as StDtype, shape, data: view(dtype as StDtype, buf.subarray(dataStart + b, dataStart + e)) };
  }
  spans.sort((x, y) => x[0] - y[0]);
  let pos = 0;
  for (const [b, e, name] of spans) {
    if (b !== pos) throw bad(`tensor ${name} does not start where the previous one ends (gap or overlap)`);
    pos = e;
  }
  if (pos !== dataLen) throw bad('trailing bytes after the last tensor');
  return { tensors, metadata };
}

export function readSafetensors(file: string, what = 'checkpoint'): { tensors: Record<string, StTensor>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? `${what} not found` : `cannot read the ${what} (${code})`,
      { file },
      'check the path; checkpoints are written by `gatelab train --save FILE`',
    );
  }
  return decodeSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), file);
}

export function writeSafetensors(file: string, tensors: Record<string, StTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
