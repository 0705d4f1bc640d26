// The command-line conventions our scripts share: --help/-h prints the usage (exit 0); an unknown
// or malformed flag prints one line and the usage (exit 2), never a stack trace.
import { parseArgs } from "node:util";

/** The parsed flags, or the process ends as above. */
export function parseOrExit(name, usage, options) {
  try {
    const { values } = parseArgs({ options: { ...options, help: { type: "boolean", short: "h" } } });
    if (values.help) {
      console.log(usage);
      process.exit(0);
    }
    return values;
  } catch (err) {
    return usageError(name, usage, err.message);
  }
}

/** Ends the process for a wrong command line: what is wrong, then the usage; exit 2. */
export function usageError(name, usage, message) {
  console.error(`${name}: ${message}\n\n${usage}`);
  process.exit(2);
}
