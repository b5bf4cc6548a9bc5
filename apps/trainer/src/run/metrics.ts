/**
 * metrics.jsonl on resume: a run killed mid-append leaves a partial last line, and a run killed
 * after logging steps past its last checkpoint will log those steps again. Before a resumed run
 * appends, the file is cut back to what the checkpoint holds: the last complete line, and no
 * line of a step after the resumed one. Written atomically (temp + rename).
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../fsutil.js';

export interface MetricsRepair {
  /** Bytes of a partial last line (no newline) dropped. */
  partialBytes: number;
  /** Complete lines dropped: steps (and their evaluations) after the checkpoint, or lines that are not JSON objects with a step. */
  droppedLines: number;
  /** Lines kept. */
  keptLines: number;
}

/** Cut `file` back to the lines of steps <= `step`; a missing file is left missing. */
export async function repairMetrics(file: string, step: number): Promise<MetricsRepair> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { partialBytes: 0, droppedLines: 0, keptLines: 0 };
    throw e;
  }
  const end = text.lastIndexOf('\n') + 1;
  const partialBytes = Buffer.byteLength(text.slice(end));
  const kept: string[] = [];
  let droppedLines = 0;
  for (const line of text.slice(0, end).split('\n').slice(0, -1)) {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    const s = (v as { step?: unknown } | undefined)?.step;
    if (typeof s === 'number' && Number.isInteger(s) && s >= 0 && s <= step) kept.push(`${line}\n`);
    else droppedLines++;
  }
  if (partialBytes > 0 || droppedLines > 0) await writeFileAtomic(file, kept.join(''));
  return { partialBytes, droppedLines, keptLines: kept.length };
}
