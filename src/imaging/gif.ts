// The colours PIL gives a GIF's first frame where libvips gives none. libvips (libnsgif) renders
// the transparent index, and the screen outside the first frame, as transparent black; PIL's
// first frame is a palette image, so convert('RGB') shows the transparent index's palette colour,
// and outside the frame the transparent index (or, without one, index 0). Everything else libvips
// decodes as PIL does. Hand-written: only the blocks before the first image's data are read (no
// LZW), so that the service can repaint those pixels; every read is bounded by the input.

export interface GifFirstFrame {
  /** PIL's canvas: the logical screen, grown to hold the first frame */
  width: number;
  height: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
  transparent: number | undefined;
  /** RGB triplets of the frame's palette; undefined when PIL reads the indices as grey levels */
  palette: Uint8Array | undefined;
}

/** The first frame's placement, transparency and palette, as PIL's GifImagePlugin reads them. */
export function readGifFirstFrame(b: Uint8Array): GifFirstFrame | undefined {
  const n = b.length;
  if (n < 13) return undefined;
  const u16 = (at: number): number => b[at]! | (b[at + 1]! << 8);
  let width = u16(6);
  let height = u16(8);
  let p = 13;
  // a palette that is the identity grey ramp makes PIL read indices as grey levels
  const readPalette = (flags: number): Uint8Array | undefined | null => {
    const size = 3 << ((flags & 7) + 1);
    if (p + size > n) return null;
    const pal = b.subarray(p, p + size);
    p += size;
    for (let i = 0; i < size; i += 3)
      if (!(pal[i] === i / 3 && pal[i + 1] === i / 3 && pal[i + 2] === i / 3)) return pal;
    return undefined;
  };
  let palette: Uint8Array | undefined;
  if (b[10]! & 0x80) {
    const pal = readPalette(b[10]!);
    if (pal === null) return undefined;
    palette = pal;
  }
  let transparent: number | undefined;
  while (p < n) {
    const kind = b[p++];
    if (kind === 0x21) {
      if (p >= n) return undefined;
      const label = b[p++];
      // graphic control extension: its first sub-block holds the transparency flag and index
      if (label === 0xf9 && p < n && b[p]! >= 4 && p + 4 < n && b[p + 1]! & 1) transparent = b[p + 4];
      while (p < n && b[p] !== 0) p += b[p]! + 1; // sub-blocks up to the terminator
      p++;
    } else if (kind === 0x2c) {
      if (p + 9 > n) return undefined;
      const left = u16(p);
      const top = u16(p + 2);
      const right = left + u16(p + 4);
      const bottom = top + u16(p + 6);
      const flags = b[p + 8]!;
      p += 9;
      if (flags & 0x80) {
        const local = readPalette(flags);
        if (local === null) return undefined;
        palette = local;
      }
      width = Math.max(width, right);
      height = Math.max(height, bottom);
      return { width, height, left, top, right, bottom, transparent, palette };
    } else return undefined; // trailer or garbage before any image
  }
  return undefined;
}

/**
 * Repaints, in libvips' decode of the first frame (interleaved, 3 or 4 channels), the pixels PIL
 * shows in palette colours and libvips leaves transparent. False when libvips' canvas is not PIL's.
 */
export function repaintGifFirstFrame(
  frame: GifFirstFrame,
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
): boolean {
  if (width !== frame.width || height !== frame.height) return false;
  const colour = (i: number): [number, number, number] => {
    if (!frame.palette) return [i, i, i];
    if (i * 3 + 2 >= frame.palette.length) return [0, 0, 0]; // past the palette: black, as in PIL
    return [frame.palette[i * 3]!, frame.palette[i * 3 + 1]!, frame.palette[i * 3 + 2]!];
  };
  const outside = colour(frame.transparent ?? 0);
  const hidden = frame.transparent === undefined ? undefined : colour(frame.transparent);
  for (let y = 0, p = 0; y < height; y++) {
    const rowInside = y >= frame.top && y < frame.bottom;
    for (let x = 0; x < width; x++, p += channels) {
      const inside = rowInside && x >= frame.left && x < frame.right;
      const c = !inside ? outside : hidden && channels === 4 && data[p + 3] === 0 ? hidden : undefined;
      if (c) {
        data[p] = c[0];
        data[p + 1] = c[1];
        data[p + 2] = c[2];
      }
    }
  }
  return true;
}
