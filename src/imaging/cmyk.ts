// CMYK → RGB as PIL's convert('RGB') does it (libImaging/Convert.c cmyk2rgb): a fixed per-pixel
// formula, no colour profile. libvips converts CMYK through an ICC profile instead, so the service
// takes the raw ink bands from libvips and applies this. The bands are PIL's: for JPEGs both libvips
// and PIL always read the inks inverted (Adobe convention, with or without an APP14 marker; YCCK
// is turned into CMYK by libjpeg in both); for TIFFs neither inverts.

/** Interleaved CMYK (4 or more channels, the 4 first are C, M, Y, K; 8 or 16 bit) → interleaved 8-bit RGB. */
export function cmykToRgb(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  sixteenBit: boolean,
): Uint8Array {
  const n = width * height;
  const src = sixteenBit ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : data;
  const shift = sixteenBit ? 8 : 0;
  const out = new Uint8Array(n * 3);
  for (let i = 0, p = 0, o = 0; i < n; i++, p += channels, o += 3) {
    const nk = 255 - (src[p + 3]! >> shift);
    for (let c = 0; c < 3; c++) {
      // nk - MULDIV255(ink, nk): ink·nk/255 rounded PIL's way, never outside 0..255
      const t = (src[p + c]! >> shift) * nk + 128;
      out[o + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}
