import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * AES-256-GCM for tokens at rest (KV `qbo-tokens`): anyone who can read the bucket still cannot
 * use the tokens without the key. Output: base64 of iv (12) | tag (16) | ciphertext.
 */
export class TokenCipher {
  readonly #key: Buffer;

  /** @throws {RangeError} unless `key` is 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError("the token encryption key must be 32 bytes");
    this.#key = Buffer.from(key);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
  }

  /** @throws {Error} when the text was not made with this key or was altered. */
  decrypt(sealed: string): string {
    const data = Buffer.from(sealed, "base64");
    const decipher = createDecipheriv("aes-256-gcm", this.#key, data.subarray(0, 12));
    decipher.setAuthTag(data.subarray(12, 28));
    return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]).toString("utf8");
  }
}
