/**
 * Training progress: a live one-line bar (step, loss, tokens/s, ETA) when stdout is a terminal,
 * plain log lines every `every` steps otherwise (CI logs stay readable and greppable).
 */

export interface ProgressUpdate {
  step: number;
  total: number;
  loss: number;
  lr: number;
  ms: number;
  tokensPerSec: number;
}

export interface Progress {
  update(u: ProgressUpdate): void;
  /** Print a line above the bar (evaluations, notices). */
  log(line: string): void;
  /** Finish the bar (newline) so later output starts on a clean line. */
  done(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** ETA from the mean of the last few step times (robust to a slow first step). */
class Eta {
  private recent: number[] = [];
  push(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > 20) this.recent.shift();
  }
  seconds(stepsLeft: number): number {
    if (!this.recent.length) return NaN;
    return (stepsLeft * this.recent.reduce((a, b) => a + b, 0)) / this.recent.length / 1000;
  }
}

export function plainProgress(log: (line: string) => void, every = 10): Progress {
  const eta = new Eta();
  return {
    update(u) {
      eta.push(u.ms);
      if (u.step % every === 0 || u.step === u.total || u.step === 1) {
        log(`step ${u.step}/${u.total} loss ${u.loss.toFixed(4)} lr ${u.lr.toExponential(2)} ${Math.round(u.tokensPerSec)} tok/s (${u.ms.toFixed(0)} ms/step, ETA ${formatDuration(eta.seconds(u.total - u.step))})`);
      }
    },
    log,
    done() {},
  };
}

export function ttyProgress(stream: NodeJS.WriteStream, width = 24): Progress {
  const eta = new Eta();
  let last = '';
  const clear = (): void => {
    if (last) stream.write('\r\x1b[2K');
  };
  return {
    update(u) {
      eta.push(u.ms);
      const frac = u.total > 0 ? u.step / u.total : 1;
      const filled = Math.round(frac * width);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
      last = `[${bar}] ${u.step}/${u.total} loss ${u.loss.toFixed(4)} ${Math.round(u.tokensPerSec)} tok/s ETA ${formatDuration(eta.seconds(u.total - u.step))}`;
      stream.write(`\r\x1b[2K${last}`);
    },
    log(line) {
      clear();
      stream.write(`${line}\n`);
      if (last) stream.write(last);
    },
    done() {
      if (last) stream.write('\n');
      last = '';
    },
  };
}

/** The bar on a TTY unless the caller passed its own log function (tests, library use). */
export function makeProgress(log: ((line: string) => void) | undefined): { progress: Progress; log: (line: string) => void } {
  if (!log && process.stdout.isTTY && !process.env.CI) {
    const progress = ttyProgress(process.stdout);
    return { progress, log: (l) => progress.log(l) };
  }
  const plain = log ?? ((l: string) => console.log(l));
  return { progress: plainProgress(plain), log: plain };
}
