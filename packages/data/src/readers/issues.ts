/**
 * How readers report a bad record: never silently. Each problem becomes a ReadIssue naming the
 * file, line and record index; `onError: 'fail'` (the default) throws it as a DataRecordError,
 * `'skip'` drops the record, reports it through `onIssue` (default: a console.warn line) and
 * returns it in `issues`.
 */
import { AdaptorkitError, type ErrorCode } from '@adaptorkit/core';

export interface ReadIssue {
  file: string;
  /** 1-based line where the record starts (0 when the problem is the whole file). */
  line: number;
  /** 0-based index of the record in the file (-1 for the whole file). */
  index: number;
  /** Dotted path of the offending field, when one field is to blame. */
  field?: string;
  message: string;
}

export function formatIssue(i: ReadIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}` : i.file;
  const what = [i.index >= 0 ? `record ${i.index}` : '', i.field ? `field '${i.field}'` : ''].filter(Boolean).join(' ');
  return what ? `${where}: ${what}: ${i.message}` : `${where}: ${i.message}`;
}

/** A reader error that carries the structured issue. */
export class DataRecordError extends AdaptorkitError {
  readonly issue: ReadIssue;
  constructor(code: ErrorCode, issue: ReadIssue) {
    super(code, formatIssue(issue));
    this.name = 'DataRecordError';
    this.issue = issue;
  }
}

export type OnError = 'skip' | 'fail';

export interface ReadOptions {
  /** 'fail' (default): the first bad record throws. 'skip': bad records are reported and dropped. */
  onError?: OnError;
  /** Called for every issue in 'skip' mode (default: console.warn of the formatted issue). */
  onIssue?: (issue: ReadIssue) => void;
}

export interface ReadResult<T> {
  records: T[];
  /** Every record dropped in 'skip' mode, with why. */
  issues: ReadIssue[];
}

/** Collects issues according to ReadOptions. */
export class IssueSink {
  readonly issues: ReadIssue[] = [];
  private readonly mode: OnError;
  private readonly onIssue: (issue: ReadIssue) => void;

  constructor(opts: ReadOptions = {}) {
    this.mode = opts.onError ?? 'fail';
    if (this.mode !== 'skip' && this.mode !== 'fail') {
      throw new AdaptorkitError('INVALID_ARGUMENT', `onError must be 'skip' or 'fail', got '${String(this.mode)}'.`);
    }
    this.onIssue = opts.onIssue ?? ((i) => console.warn(`[adaptorkit/data] skipped: ${formatIssue(i)}`));
  }

  /** Report a record-level problem: throws in 'fail' mode, records it in 'skip' mode. */
  report(issue: ReadIssue, code: ErrorCode = 'BAD_FILE'): void {
    if (this.mode === 'fail') throw new DataRecordError(code, issue);
    this.issues.push(issue);
    this.onIssue(issue);
  }
}
