import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunInfo } from '../run-format.js';
import { acquireRunLock, LOCK_DIR, LOCK_INFO, runLockHolder } from './lock.js';
import { repairMetrics } from './metrics.js';
import { recordRunEnd } from './status.js';
import { runDirOf, runNameProblem } from './folder.js';
import { cleanTempFiles } from './checkpoints.js';
import { writeJsonSyncAtomic } from './signals.js';

let tmp = '';
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-run-'));
});

describe('acquireRunLock', () => {
  it('one holder at a time; the refusal names its PID and host; release frees it', async () => {
    const dir = path.join(tmp, 'a');
    const release = await acquireRunLock(dir, { command: 'train' });
    expect(await runLockHolder(dir)).toMatchObject({ pid: process.pid, host: os.hostname(), command: 'train' });
    await expect(acquireRunLock(dir)).rejects.toMatchObject({ code: 'RUN_LOCKED', message: expect.stringContaining(`in use by process ${process.pid} on host ${os.hostname()} (train)`) });
    await release();
    await release(); // idempotent
    expect(await runLockHolder(dir)).toBeUndefined();
    await (await acquireRunLock(dir))();
  });

  it('a lock left by a dead process on this host is taken at once', async () => {
    const dir = path.join(tmp, 'dead');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    await fs.mkdir(path.join(dir, LOCK_DIR), { recursive: true });
    await fs.writeFile(path.join(dir, LOCK_INFO), JSON.stringify({ pid: Number(dead), host: os.hostname(), startedAt: 'then' }));
    const release = await acquireRunLock(dir);
    expect((await runLockHolder(dir))?.pid).toBe(process.pid);
    await release();
  });

  it('a fresh lock of a process on another host is respected', async () => {
    const dir = path.join(tmp, 'remote');
    await fs.mkdir(path.join(dir, LOCK_DIR), { recursive: true });
    await fs.writeFile(path.join(dir, LOCK_INFO), JSON.stringify({ pid: 1234, host: 'elsewhere.example', startedAt: 'now' }));
    await expect(acquireRunLock(dir)).rejects.toThrow(/in use by process 1234 on host elsewhere\.example/);
  });
});

describe('repairMetrics', () => {
  it('drops a partial last line and every line of a step after the resumed one', async () => {
    const file = path.join(tmp, 'metrics.jsonl');
    const step = (s: number): string => `${JSON.stringify({ kind: 'step', step: s, loss: 1 })}\n`;
    const evalLine = (s: number): string => `${JSON.stringify({ kind: 'eval', step: s, split: 'val', metrics: {} })}\n`;
    await fs.writeFile(file, `${step(1)}${step(2)}${evalLine(2)}${step(3)}${step(4)}${evalLine(4)}{"kind":"st`);
    expect(await repairMetrics(file, 2)).toEqual({ partialBytes: 11, droppedLines: 3, keptLines: 3 });
    expect(await fs.readFile(file, 'utf8')).toBe(`${step(1)}${step(2)}${evalLine(2)}`);
    expect(await repairMetrics(file, 2)).toEqual({ partialBytes: 0, droppedLines: 0, keptLines: 3 });
    expect(await repairMetrics(path.join(tmp, 'none.jsonl'), 2)).toEqual({ partialBytes: 0, droppedLines: 0, keptLines: 0 });
  });
});

describe('recordRunEnd', () => {
  it('never throws: a run.json that cannot be written is logged, so the error that ended the run is the one reported', async () => {
    await fs.writeFile(path.join(tmp, 'not-a-folder'), '');
    const logs: string[] = [];
    const info = { status: 'running' } as RunInfo;
    expect(await recordRunEnd(path.join(tmp, 'not-a-folder', 'run.json'), info, 'failed', 'ENOSPC: no space left on device', (l) => logs.push(l))).toBe(false);
    expect(info).toMatchObject({ status: 'failed', statusDetail: 'ENOSPC: no space left on device' });
    expect(logs[0]).toMatch(/could not record status 'failed'/);
  });
});

describe('run names', () => {
  it('are one folder inside outputDir', () => {
    for (const bad of ['.', '..', '...']) expect(runNameProblem(bad), bad).toMatch(/is not a folder name/);
    for (const bad of ['a/b', '', 'a\\b', 'x y']) expect(runNameProblem(bad), bad).toMatch(/letters, digits, dot, dash and underscore/);
    for (const good of ['x.y', 'run-1_a', '.hidden']) expect(runNameProblem(good), good).toBeUndefined();
    expect(() => runDirOf({ outputDir: tmp, name: '..' })).toThrow(/name: /);
    expect(runDirOf({ outputDir: tmp, name: 'x.y' })).toBe(path.join(tmp, 'x.y'));
  });
});

describe('cleanTempFiles', () => {
  it("removes what killed writers leave (checkpoint temp folders, atomic writes' temp files) and nothing else", async () => {
    const dir = path.join(tmp, 'temps');
    await fs.mkdir(path.join(dir, 'checkpoints', 'step-000010.tmp-4242'), { recursive: true });
    await fs.mkdir(path.join(dir, 'checkpoints', 'step-000005'), { recursive: true });
    await fs.writeFile(path.join(dir, '.run.json.tmp-4242-0a1b2c3d'), '{');
    await fs.writeFile(path.join(dir, 'metrics.jsonl'), '');
    writeJsonSyncAtomic(path.join(dir, 'run.json'), { status: 'interrupted' });
    await fs.writeFile(path.join(dir, '.run.json.tmp-4243-0'), '{'); // as a sync write killed before its rename leaves it
    const removed = (await cleanTempFiles(dir)).map((f) => path.relative(dir, f)).sort();
    expect(removed).toEqual(['.run.json.tmp-4242-0a1b2c3d', '.run.json.tmp-4243-0', path.join('checkpoints', 'step-000010.tmp-4242')]);
    expect((await fs.readdir(dir)).sort()).toEqual(['checkpoints', 'metrics.jsonl', 'run.json']);
    expect(await fs.readdir(path.join(dir, 'checkpoints'))).toEqual(['step-000005']);
  });
});
