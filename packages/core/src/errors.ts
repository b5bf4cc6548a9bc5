/**
 * Every error adaptorkit raises on purpose is an AdaptorkitError with a stable code, so callers can
 * branch on `err.code` and users get a message that says what was expected and what to do.
 */
export type ErrorCode =
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_FAILED'
  | 'SHAPE_MISMATCH'
  | 'MISSING_TENSOR'
  | 'UNEXPECTED_TENSOR'
  | 'INVALID_ARGUMENT'
  | 'INVALID_CONFIG'
  | 'UNSUPPORTED'
  | 'BAD_FILE'
  | 'IO_ERROR'
  | 'NOT_TRAINABLE'
  | 'DISPOSED'
  | 'RUN_LOCKED';

export class AdaptorkitError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdaptorkitError';
    this.code = code;
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new AdaptorkitError(code, message);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
