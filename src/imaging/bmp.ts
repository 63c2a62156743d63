// Windows BMP (and header-less DIB) → 8-bit RGB, exactly as Pillow 12 opens and converts them
// (BmpImagePlugin, libImaging's raw decoder and unpackers, convert('RGB')).
//
// Hand-written because libvips (sharp) has no BMP loader, and the npm BMP decoders differ from PIL
// (15/16-bit expanded by bit replication instead of PIL's v·255/31, no bit-field alpha or top-down
// rows, no PIL greyscale-palette rule, sizes trusted before checking them against the input).
// PIL's quirks reproduced on purpose: a palette that is exactly black/white (2 colours) or the grey
// ramp 0..n-1 makes a "1"/"L" image whose pixel bytes are then read as 1 or 8 bits whatever the
// file's depth; indices past the palette are black; 16-bit BI_RGB is 5-5-5 (top bit ignored); 32-bit
// BI_RGB ignores the 4th byte; RLE4 absolute runs of odd length drop their last pixel; RLE runs go
// on into the next row; an RLE image that ends before its last row is an error.
// (Pillow 9.4 differs in: no 52/56-byte headers, no BGXR/BGAR bit fields, indices past the palette
// grey instead of black, an OS/2 palette skipped as 4 bytes per colour when the pixel offset points
// at it, RLE deltas that read two bytes too many.)
// Every read is bounded by the input, and width × height is checked before anything is allocated.

import type { DecodeResult } from './decoded.js';

const HEADER_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);

/** Byte position of R, G, B in a 32-bit pixel, by PIL's raw mode for the bit-field masks. */
const MASKS_32: [number, number, number, number, string, [number, number, number]][] = [
  [0xff0000, 0xff00, 0xff, 0, 'BGRX', [2, 1, 0]],
  [0xff000000, 0xff0000, 0xff00, 0, 'XBGR', [3, 2, 1]],
  [0xff000000, 0xff00, 0xff, 0, 'BGXR', [3, 1, 0]],
  [0xff000000, 0xff0000, 0xff00, 0xff, 'ABGR', [3, 2, 1]],
  [0xff, 0xff00, 0xff0000, 0xff000000, 'RGBA', [0, 1, 2]],
  [0xff0000, 0xff00, 0xff, 0xff000000, 'BGRA', [2, 1, 0]],
  [0xff000000, 0xff00, 0xff, 0xff0000, 'BGAR', [3, 1, 0]],
  [0, 0, 0, 0, 'BGRA', [2, 1, 0]],
];

/** PIL's 5- and 6-bit channel expansions: v * 255 / max, truncated. */
const EXPAND5 = Uint8Array.from({ length: 32 }, (_, v) => Math.floor((v * 255) / 31));
const EXPAND6 = Uint8Array.from({ length: 64 }, (_, v) => Math.floor((v * 255) / 63));

type RawMode = '1' | 'L' | 'P;1' | 'P;4' | 'P' | 'BGR;15' | 'BGR;16' | 'BGR' | 'RGB32';

const unsupported = (message: string): DecodeResult => ({
  ok: false,
  status: 415,
  message: `unsupported BMP: ${message}`,
});
const bad = (message: string): DecodeResult => ({
  ok: false,
  status: 422,
  message: `cannot decode the bmp image: ${message}`,
});

/** Whether the bytes start like a header-less DIB that PIL opens (its header size, little-endian). */
export function isDib(b: Uint8Array): boolean {
  return b.length >= 4 && b[1] === 0 && b[2] === 0 && b[3] === 0 && HEADER_SIZES.has(b[0]!);
}

/** A BMP file ("BM" header) or, with `fileHeader` false, a header-less DIB. */
export function decodeBmp(b: Uint8Array, maxPixels: number, fileHeader = true): DecodeResult {
  const n = b.length;
  const u16 = (at: number): number => b[at]! | (b[at + 1]! << 8);
  const u32 = (at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

  let offset = 0;
  let pos = 0; // the file position PIL's reads have reached
  if (fileHeader) {
    if (n < 14) return bad('truncated file header');
    offset = u32(10);
    pos = 14;
  }
  if (pos + 4 > n) return bad('truncated info header');
  const headerSize = u32(pos);
  if (!HEADER_SIZES.has(headerSize)) return unsupported(`header size ${headerSize}`);
  const hd = pos + 4; // header data (after its size field)
  if (pos + headerSize > n) return bad('truncated info header');
  pos += headerSize;

  let width: number;
  let height: number;
  let bits: number;
  let compression = 0;
  let colors = 0;
  let paletteEntry: 3 | 4;
  let bottomUp = true;
  let masks: [number, number, number, number] = [0, 0, 0, 0];
  if (headerSize === 12) {
    width = u16(hd);
    height = u16(hd + 2);
    bits = u16(hd + 6);
    paletteEntry = 3;
  } else {
    // A height whose top byte is 0xFF is negative: rows run top-down (PIL's test, kept exactly).
    bottomUp = b[hd + 7] !== 0xff;
    width = u32(hd);
    height = bottomUp ? u32(hd + 4) : 2 ** 32 - u32(hd + 4);
    bits = u16(hd + 10);
    compression = u32(hd + 12);
    colors = u32(hd + 28);
    paletteEntry = 4;
    if (compression === 3) {
      if (headerSize >= 52) {
        masks = [u32(hd + 36), u32(hd + 40), u32(hd + 44), headerSize >= 56 ? u32(hd + 48) : 0];
      } else {
        // a 40-byte header is followed by the three masks
        if (pos + 12 > n) return bad('truncated bit-field masks');
        masks = [u32(pos), u32(pos + 4), u32(pos + 8), 0];
        pos += 12;
      }
    }
  }

  if (!width || !height) return bad('the image has no dimensions');
  if (width * height > maxPixels) {
    return {
      ok: false,
      status: 413,
      message: `image is ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels}`,
    };
  }
  if (bits <= 8 && !colors) colors = 2 ** bits;
  if (fileHeader && offset === 14 + headerSize && bits <= 8) offset += paletteEntry * colors;

  let rawMode: RawMode;
  let rgbAt: [number, number, number] = [2, 1, 0];
  const rle = compression === 1 || compression === 2;
  switch (bits) {
    case 1:
      rawMode = 'P;1';
      break;
    case 4:
      rawMode = 'P;4';
      break;
    case 8:
      rawMode = 'P';
      break;
    case 16:
      rawMode = 'BGR;15';
      break;
    case 24:
      rawMode = 'BGR';
      break;
    case 32:
      rawMode = 'RGB32';
      break;
    default:
      return unsupported(`${bits} bits per pixel`);
  }
  if (compression === 3) {
    const [r, g, bl, a] = masks;
    if (bits === 32 && MASKS_32.some((m) => m[0] === r && m[1] === g && m[2] === bl && m[3] === a)) {
      rgbAt = MASKS_32.find((m) => m[0] === r && m[1] === g && m[2] === bl && m[3] === a)![5];
    } else if (bits === 24 && r === 0xff0000 && g === 0xff00 && bl === 0xff) {
      rawMode = 'BGR';
    } else if (bits === 16 && r === 0xf800 && g === 0x7e0 && bl === 0x1f) {
      rawMode = 'BGR;16';
    } else if (!(bits === 16 && r === 0x7c00 && g === 0x3e0 && bl === 0x1f)) {
      return unsupported(`bit-field masks ${masks.map((m) => m.toString(16)).join('/')} at ${bits} bits`);
    }
  } else if (compression !== 0 && !rle) {
    return unsupported(`compression ${compression}`);
  }

  // Palette images (1, 4, 8 bits): PIL reads the palette right after the header, as far as the file goes.
  let palette: Uint8Array | undefined;
  if (bits <= 8) {
    if (!(colors > 0 && colors <= 65536)) return bad(`palette of ${colors} colours`);
    const end = Math.min(n, pos + paletteEntry * colors);
    const raw = b.subarray(pos, end);
    pos = end;
    let grey = true;
    for (let i = 0; i < colors && grey; i++) {
      const v = (colors === 2 ? i * 255 : i) & 255;
      const at = i * paletteEntry;
      grey = at + 3 <= raw.length && raw[at] === v && raw[at + 1] === v && raw[at + 2] === v;
    }
    if (grey) {
      rawMode = colors === 2 ? '1' : 'L';
    } else {
      const entries = Math.floor(raw.length / paletteEntry);
      if (entries > 256) return bad(`palette of ${entries} colours`);
      palette = new Uint8Array(256 * 3); // entries past the palette stay black, as in PIL
      for (let i = 0; i < entries; i++) {
        palette[i * 3] = raw[i * paletteEntry + 2]!;
        palette[i * 3 + 1] = raw[i * paletteEntry + 1]!;
        palette[i * 3 + 2] = raw[i * paletteEntry]!;
      }
    }
  }
  const start = offset || pos;
  if (rle) return decodeRle(b, start, width, height, bottomUp, compression === 2, rawMode, palette);

  // Uncompressed: rows of `stride` bytes from `start`, each unpacked by the raw mode.
  const unpackBits = { '1': 1, 'P;1': 1, 'P;4': 4, L: 8, P: 8, 'BGR;15': 16, 'BGR;16': 16, BGR: 24, RGB32: 32 }[
    rawMode
  ];
  const rowBytes = Math.ceil((width * unpackBits) / 8);
  const stride = 4 * Math.floor((width * bits + 31) / 32);
  if (stride < rowBytes) return bad(`rows of ${stride} bytes cannot hold ${width} pixels`);
  if (start + (height - 1) * stride + rowBytes > n) return bad('truncated pixel data');

  const rgb = new Uint8Array(width * height * 3);
  for (let row = 0; row < height; row++) {
    const src = start + row * stride;
    let o = (bottomUp ? height - 1 - row : row) * width * 3;
    for (let x = 0; x < width; x++, o += 3) {
      switch (rawMode) {
        case '1': {
          const v = b[src + (x >> 3)]! & (0x80 >> (x & 7)) ? 255 : 0;
          rgb[o] = rgb[o + 1] = rgb[o + 2] = v;
          break;
        }
        case 'L': {
          rgb[o] = rgb[o + 1] = rgb[o + 2] = b[src + x]!;
          break;
        }
        case 'P;1':
        case 'P;4':
        case 'P': {
          const i =
            rawMode === 'P'
              ? b[src + x]!
              : rawMode === 'P;4'
                ? (b[src + (x >> 1)]! >> (x & 1 ? 0 : 4)) & 15
                : (b[src + (x >> 3)]! >> (7 - (x & 7))) & 1;
          rgb[o] = palette![i * 3]!;
          rgb[o + 1] = palette![i * 3 + 1]!;
          rgb[o + 2] = palette![i * 3 + 2]!;
          break;
        }
        case 'BGR;15':
        case 'BGR;16': {
          const p = u16(src + 2 * x);
          if (rawMode === 'BGR;15') {
            rgb[o] = EXPAND5[(p >> 10) & 31]!;
            rgb[o + 1] = EXPAND5[(p >> 5) & 31]!;
          } else {
            rgb[o] = EXPAND5[(p >> 11) & 31]!;
            rgb[o + 1] = EXPAND6[(p >> 5) & 63]!;
          }
          rgb[o + 2] = EXPAND5[p & 31]!;
          break;
        }
        case 'BGR': {
          rgb[o] = b[src + 3 * x + 2]!;
          rgb[o + 1] = b[src + 3 * x + 1]!;
          rgb[o + 2] = b[src + 3 * x]!;
          break;
        }
        case 'RGB32': {
          rgb[o] = b[src + 4 * x + rgbAt[0]]!;
          rgb[o + 1] = b[src + 4 * x + rgbAt[1]]!;
          rgb[o + 2] = b[src + 4 * x + rgbAt[2]]!;
          break;
        }
      }
    }
  }
  return { ok: true, rgb, width, height };
}

/** PIL's BmpRleDecoder: one byte (index or grey level) per pixel into a flat buffer, then rows. */
function decodeRle(
  b: Uint8Array,
  start: number,
  width: number,
  height: number,
  bottomUp: boolean,
  rle4: boolean,
  rawMode: RawMode,
  palette: Uint8Array | undefined,
): DecodeResult {
  // PIL reads RLE data into a "P" or "L" image only; other modes have no such raw mode there.
  if (rawMode !== 'L' && !palette) return bad(`RLE data in a ${rawMode === '1' ? 'two-colour' : 'true-colour'} image`);
  const n = b.length;
  const dest = width * height;
  const data = new Uint8Array(dest); // positions past `len` are still zero, as PIL's padding is
  let len = 0; // PIL's len(data), which may run past `dest`
  let x = 0;
  let p = start;
  const put = (v: number): void => {
    if (len < dest) data[len] = v;
    len++;
  };
  while (len < dest) {
    if (p + 2 > n) break;
    let count = b[p]!;
    const byte = b[p + 1]!;
    p += 2;
    if (count) {
      // encoded run, cut at the end of the row
      if (x + count > width) count = Math.max(0, width - x);
      for (let i = 0; i < count; i++) put(rle4 ? (i & 1 ? byte & 15 : byte >> 4) : byte);
      x += count;
    } else if (byte === 0) {
      len = Math.ceil(len / width) * width; // end of row
      x = 0;
    } else if (byte === 1) {
      break; // end of bitmap
    } else if (byte === 2) {
      if (p + 2 > n) break;
      len += b[p]! + b[p + 1]! * width; // delta: right, up
      p += 2;
      x = len % width;
    } else {
      // absolute run; RLE4 reads byte/2 bytes (an odd run loses its last pixel, as in PIL)
      const want = rle4 ? byte >> 1 : byte;
      const got = Math.min(want, n - p);
      for (let i = 0; i < got; i++) {
        const v = b[p + i]!;
        if (rle4) {
          put(v >> 4);
          put(v & 15);
        } else put(v);
      }
      p += got;
      if (got < want) break;
      x += byte;
      if (p % 2) p++; // PIL aligns the file position to a 16-bit word
    }
  }
  if (len < dest) return bad('RLE data ends before the last row');

  const rgb = new Uint8Array(dest * 3);
  for (let row = 0; row < height; row++) {
    const src = row * width;
    let o = (bottomUp ? height - 1 - row : row) * width * 3;
    for (let i = 0; i < width; i++, o += 3) {
      const v = data[src + i]!;
      if (palette) {
        rgb[o] = palette[v * 3]!;
        rgb[o + 1] = palette[v * 3 + 1]!;
        rgb[o + 2] = palette[v * 3 + 2]!;
      } else rgb[o] = rgb[o + 1] = rgb[o + 2] = v;
    }
  }
  return { ok: true, rgb, width, height };
}
