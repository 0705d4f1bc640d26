/**
 * The release of qbo-webhooks this code is, exported as `qbo_build_info{version}`; the chart's
 * `appVersion` is the same (the chart's tests hold them equal).
 */
export const VERSION = "0.1.0";
