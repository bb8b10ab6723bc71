// Execution-provider discovery (issue 5): the reasons given when CUDA cannot be used.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseDevice, linkProviderDir, ortVersion, providerVersionMatches } from '../../src/engine/runtime/device';
import { UserError } from '../../src/engine/errors';

describe('CUDA provider discovery', () => {
  it('a provider folder without the two libraries is reported by name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-ep-'));
    expect(linkProviderDir(dir)).toBe(`GATELAB_CUDA_PROVIDER_DIR=${dir} lacks libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so`);
  });

  it('a provider built for another onnxruntime version is refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-ep-'));
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_shared.so'), 'x');
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_cuda.so'), 'ELF … onnxruntime 1.17.3 …');
    expect(providerVersionMatches(path.join(dir, 'libonnxruntime_providers_cuda.so'))).toBe(false);
    expect(linkProviderDir(dir)).toMatch(new RegExp(`not built for ONNX Runtime ${ortVersion().replace(/\./g, '\\.')}`));
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_cuda.so'), `ELF … ${ortVersion()} …`);
    expect(providerVersionMatches(path.join(dir, 'libonnxruntime_providers_cuda.so'))).toBe(true);
  });

  it('device cuda without the provider is a user error with the reason; auto falls back to the CPU with it', () => {
    if (fs.existsSync(path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'))) return;
    expect(() => chooseDevice('cuda')).toThrow(UserError);
    const auto = chooseDevice('auto');
    expect(auto.device).toBe('cpu');
    expect(auto.reason).toMatch(/CUDA execution provider is not installed/);
    expect(chooseDevice('cpu')).toEqual({ device: 'cpu' });
  });
});
