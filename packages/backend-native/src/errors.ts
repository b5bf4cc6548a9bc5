/** Errors this package raises on purpose carry a stable code (same shape as core's AdaptorkitError). */
export type NativeErrorCode = 'NATIVE_UNAVAILABLE' | 'INVALID_ARGUMENT';

export class NativeBackendError extends Error {
  readonly code: NativeErrorCode;
  constructor(code: NativeErrorCode, message: string) {
    super(message);
    this.name = 'NativeBackendError';
    this.code = code;
  }
}
