// Where a CUDA install lives and what it holds. `gatelab cuda install` writes a set of libraries
// (the CUDA provider of the exact onnxruntime version and the NVIDIA runtime it needs) into a folder
// of its own under the CUDA folder, then commits it by writing `installed.json` atomically; a set
// that is not named by `installed.json` is not installed. Nothing here touches the network.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The CUDA folder: GATELAB_CUDA_DIR (the extension passes its global storage), else a per-user one. */
export function cudaDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GATELAB_CUDA_DIR) return path.resolve(env.GATELAB_CUDA_DIR);
  if (process.platform === 'win32') return path.join(env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'), 'gatelab', 'cuda');
  return path.join(env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'gatelab', 'cuda');
}

export interface InstalledPackage {
  registry: 'nuget' | 'pypi' | 'npm';
  name: string;
  version: string;
  file: string;
  /** `sha512-<base64>` or `sha256-<hex>`, as verified */
  digest: string;
  /** where the bytes came from: a URL or a local file */
  from: string;
  /** library files it put into the set */
  libraries: string[];
}

export interface Installed {
  onnxruntime: string;
  platform: string;
  /** the build of the manifest (`cuda12`, `cuda13`) */
  build: string;
  cuda: number;
  /** the folder of this set, relative to the CUDA folder */
  set: string;
  installedAt: string;
  packages: InstalledPackage[];
  /** NVIDIA packages not installed because the system has their libraries (library → where) */
  fromSystem: Record<string, string>;
}

export const INSTALLED_FILE = 'installed.json';

/** The committed install of `dir`, or undefined when there is none (or it is unreadable). */
export function readInstalled(dir = cudaDir()): Installed | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, INSTALLED_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as Installed;
    return typeof v.set === 'string' && Array.isArray(v.packages) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The library folder of the committed install of `dir`. */
export function installedLibDir(dir = cudaDir()): string | undefined {
  const inst = readInstalled(dir);
  if (!inst) return undefined;
  const lib = path.join(dir, inst.set);
  return fs.existsSync(lib) ? lib : undefined;
}
