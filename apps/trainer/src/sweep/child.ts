/**
 * Running the adaptorkit CLI as a child process tied to its parent: the child gets an IPC channel
 * and ADAPTORKIT_EXIT_WITH_PARENT=1, and the CLI stops itself as on SIGTERM when that channel
 * closes, so a worker killed with SIGKILL does not leave a training process behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The trainer's CLI entry (apps/trainer/bin/adaptorkit.js), found upward from this file (src/sweep/ or the bundled dist/). */
export const CLI = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const f = path.join(dir, 'bin', 'adaptorkit.js');
    if (existsSync(f)) return f;
  }
  return path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'adaptorkit.js');
})();

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines of its output (stdout and stderr together). */
  tail: string[];
}

/**
 * Run `adaptorkit ...args`; every output line goes to `log` and to `logFile` (appended, so a
 * resumed run's log keeps the earlier attempts).
 */
export async function runCli(args: readonly string[], o: { logFile: string; log?: (line: string) => void; env?: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<ChildResult> {
  await fs.mkdir(path.dirname(o.logFile), { recursive: true });
  const out = await fs.open(o.logFile, 'a');
  const tail: string[] = [];
  try {
    return await new Promise<ChildResult>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: { ...(o.env ?? process.env), ADAPTORKIT_EXIT_WITH_PARENT: '1' },
      });
      const take = (b: Buffer): void => {
        void out.write(b);
        for (const l of b.toString().split('\n')) {
          if (!l.trim()) continue;
          tail.push(l);
          if (tail.length > 40) tail.shift();
          o.log?.(l);
        }
      };
      child.stdout!.on('data', take);
      child.stderr!.on('data', take);
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, tail }));
      o.signal?.addEventListener('abort', () => child.kill('SIGTERM'), { once: true });
    });
  } finally {
    await out.close();
  }
}

/**
 * In the CLI: when started by runCli, stop as on SIGTERM once the parent is gone (its IPC channel
 * closes). One line in cli.ts.
 */
export function exitWithParent(): void {
  if (process.env['ADAPTORKIT_EXIT_WITH_PARENT'] !== '1' || typeof process.send !== 'function') return;
  process.on('disconnect', () => {
    process.kill(process.pid, 'SIGTERM');
  });
  // the channel must not keep the process alive once its work is done
  process.channel?.unref();
}
