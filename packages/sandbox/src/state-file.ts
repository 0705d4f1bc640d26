import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { jsonOrUndefined } from "@qbo-webhooks/contracts";
import { SandboxError } from "./sandbox-error.js";
import { SandboxState } from "./sandbox-state.js";

/**
 * The sandbox's state in a file (SANDBOX_STATE_FILE): read at start, written soon after each change
 * and at stop. Each write replaces the file whole (write, then rename), so a crash leaves the last
 * state written, never half of one.
 */
export class StateFile {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly snapshot: () => SandboxState,
    private readonly delayMs = 250,
  ) {}

  /**
   * The saved state, or undefined when there is no file yet.
   *
   * @throws {SandboxError} INVALID_REQUEST when the file is there but holds no saved sandbox.
   */
  read(): SandboxState | undefined {
    if (!existsSync(this.path)) return undefined;
    const parsed = SandboxState.safeParse(jsonOrUndefined(readFileSync(this.path, "utf8")));
    if (!parsed.success) {
      throw new SandboxError(
        "INVALID_REQUEST",
        `${this.path} holds no saved sandbox (${parsed.error.issues[0]?.message ?? "not JSON"}); delete it to start with new companies`,
      );
    }
    return parsed.data;
  }

  /** Writes within `delayMs`: a burst of changes costs one write. */
  schedule(): void {
    this.#timer ??= setTimeout(() => this.save(), this.delayMs);
  }

  save(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.snapshot()), { mode: 0o600 });
    renameSync(temporary, this.path);
  }
}
