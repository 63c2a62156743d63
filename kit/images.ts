// Image bytes for tests and the bench.

/** The same JPEG with a comment segment after SOI: identical pixels, bytes (and a SHA-256) never seen before. */
export function jpegWithComment(jpeg: Buffer, note: string): Buffer {
  const text = Buffer.from(note);
  const segment = Buffer.alloc(4 + text.length);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(text.length + 2, 2);
  text.copy(segment, 4);
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}
