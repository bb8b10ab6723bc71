// The dynamic section of an ELF shared library (64-bit, little-endian: Linux x64): the libraries it
// needs (DT_NEEDED), its soname and its RUNPATH/RPATH. Enough to say, before onnxruntime tries,
// which library of the CUDA provider's chain the loader will not find (doctor, `device: cuda`).

import * as fs from 'node:fs';

export interface DynamicInfo {
  soname?: string;
  needed: string[];
  runpath: string[];
}

const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;

/** Reads `file`'s dynamic section; undefined when it is not a 64-bit little-endian ELF object. */
export function readDynamic(file: string): DynamicInfo | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      const n = fs.readSync(fd, b, 0, len, pos);
      return b.subarray(0, n);
    };
    const h = read(0, 64);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = read(phoff, phentsize * phnum);
    const loads: { vaddr: number; offset: number; filesz: number }[] = [];
    let dyn: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      const type = ph.readUInt32LE(o);
      const offset = Number(ph.readBigUInt64LE(o + 8));
      const vaddr = Number(ph.readBigUInt64LE(o + 16));
      const filesz = Number(ph.readBigUInt64LE(o + 32));
      if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
      if (type === PT_DYNAMIC) dyn = { offset, size: filesz };
    }
    if (!dyn) return { needed: [], runpath: [] };
    const d = read(dyn.offset, dyn.size);
    const entries: [number, number][] = [];
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = Number(d.readBigInt64LE(o));
      if (tag === 0) break;
      entries.push([tag, Number(d.readBigUInt64LE(o + 8))]);
    }
    const strtabAddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
    if (strtabAddr === undefined) return { needed: [], runpath: [] };
    const seg = loads.find((l) => strtabAddr >= l.vaddr && strtabAddr < l.vaddr + l.filesz);
    const strtab = seg ? strtabAddr - seg.vaddr + seg.offset : strtabAddr;
    const str = (off: number): string => {
      const b = read(strtab + off, 4096);
      const end = b.indexOf(0);
      return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
    };
    const info: DynamicInfo = { needed: [], runpath: [] };
    for (const [tag, val] of entries) {
      if (tag === DT_NEEDED) info.needed.push(str(val));
      else if (tag === DT_SONAME) info.soname = str(val);
      else if (tag === DT_RUNPATH || tag === DT_RPATH) info.runpath.push(...str(val).split(':').filter(Boolean));
    }
    return info;
  } finally {
    fs.closeSync(fd);
  }
}
