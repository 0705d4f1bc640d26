export type SandboxErrorCode =
  | "UNKNOWN_COMPANY"
  | "UNKNOWN_APP"
  | "NOT_FOUND"
  | "OPERATION_NOT_ALLOWED"
  | "INVALID_REQUEST";

/** A control-API request the sandbox cannot carry out; the control server answers it with 4xx. */
export class SandboxError extends Error {
  override name = "SandboxError";
  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
