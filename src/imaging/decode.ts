// Image preprocessing as ALBEF's retrieval transform does it, from encoded bytes to resized pixels:
// decode as PIL's Image.open → exif_transpose → convert('RGB') (sharp for most formats, with CMYK
// inks converted by PIL's formula in cmyk.ts and GIF transparency repainted by gif.ts; BMP by
// bmp.ts) → 16-bit to 8-bit (v >> 8) → grey to RGB → alpha dropped, not composited → PIL-exact
// bicubic resize to size×size, as 8-bit RGB. The
// float step (/255, mean/std, CHW) is pixel-normalize.ts, run where the batch tensor is built. Pure
// functions over buffers: the worker pool runs them off the event loop.

import sharp, { type OutputInfo } from 'sharp';
import { decodeBmp, isDib } from './bmp.js';
import type { DecodeFailure, DecodeResult, ImageFormat, PreprocessOptions, PreprocessResult } from './decoded.js';
import { cmykToRgb } from './cmyk.js';
import { readGifFirstFrame, repaintGifFirstFrame } from './gif.js';
import { resizeBicubicRGB } from './pil-resize.js';

/** The container format from the first bytes, or undefined when it is not one we decode. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | undefined {
  const ascii = (from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (
    b.length >= 4 &&
    ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) ||
      (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))
  )
    return 'tiff';
  if (
    b.length >= 12 &&
    ascii(4, 8) === 'ftyp' &&
    /^(avif|avis|heic|heix|heim|heis|hevc|hevx|mif1|msf1)$/.test(ascii(8, 12))
  )
    return 'heif';
  // PIL opens anything starting "BM" as BMP, and a bare DIB header too
  if ((b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) || isDib(b)) return 'bmp';
  return undefined;
}

/** Decodes to full-size RGB as PIL does; the pixel limit is checked from the header first. */
export async function decodeImage(
  bytes: Uint8Array,
  maxPixels: number,
): Promise<(DecodeResult & { ok: true; format: ImageFormat }) | DecodeFailure> {
  const format = sniffImageFormat(bytes);
  if (!format)
    return {
      ok: false,
      status: 415,
      message: 'unsupported image type (accepted: JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF/HEIF)',
    };
  if (format === 'heif' && !sharp.format.heif?.input?.buffer)
    return { ok: false, status: 415, message: 'this build cannot decode AVIF/HEIF' };
  let decoded: DecodeResult;
  try {
    decoded =
      format === 'bmp'
        ? decodeBmp(bytes, maxPixels, bytes[0] === 0x42)
        : await decodeWithSharp(bytes, format, maxPixels);
  } catch (e) {
    // the hand-written decoders are bounded and fuzzed; this only keeps a missed case a 422
    return { ok: false, status: 422, message: `cannot decode the ${format} image: ${(e as Error).message}` };
  }
  return decoded.ok ? { ...decoded, format } : decoded;
}

export async function preprocessImage(bytes: Uint8Array, options: PreprocessOptions): Promise<PreprocessResult> {
  const d = await decodeImage(bytes, options.maxPixels);
  if (!d.ok) return d;
  return {
    ok: true,
    rgb: resizeBicubicRGB(d.rgb, d.width, d.height, options.size, options.size),
    width: d.width,
    height: d.height,
    format: d.format,
  };
}

/**
 * The size of a JPEG or PNG whose pixels libvips gives as 8-bit grey or RGB(A) (not CMYK, not 16-bit),
 * read from its header here so that libvips' separate header read can be skipped; undefined for any
 * other file, which takes the general path.
 */
export function plainHeader(b: Uint8Array, format: ImageFormat): { width: number; height: number } | undefined {
  const u16 = (p: number): number => (b[p]! << 8) | b[p + 1]!;
  const u32 = (p: number): number => u16(p) * 65536 + u16(p + 2);
  let size: { width: number; height: number } | undefined;
  if (format === 'png') {
    // IHDR comes first: width, height, bit depth (16 takes the general path)
    if (b.length >= 29 && u32(12) === 0x49484452 && b[24]! <= 8) size = { width: u32(16), height: u32(20) };
  } else if (format === 'jpeg') {
    for (let p = 2; p + 10 <= b.length;) {
      const marker = b[p + 1]!;
      if (b[p] !== 0xff) break;
      if (marker === 0xff || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        p += marker === 0xff ? 1 : 2; // a fill byte, or a marker without a length (TEM, RSTn)
        continue;
      }
      // SOFn (n ≠ 4, 8, 12): precision, height, width, components; 1 or 3 components of 8 bits only
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        if (b[p + 4] === 8 && (b[p + 9] === 1 || b[p + 9] === 3)) size = { width: u16(p + 7), height: u16(p + 5) };
        break;
      }
      if (marker === 0xda || marker === 0xd9 || u16(p + 2) < 2) break; // scan or end before any frame
      p += 2 + u16(p + 2);
    }
  }
  return size && size.width > 0 && size.height > 0 ? size : undefined;
}

async function decodeWithSharp(
  bytes: Uint8Array,
  format: ImageFormat,
  maxPixels: number,
  readHeader = true,
): Promise<DecodeResult> {
  let decoded: { data: Buffer; info: OutputInfo };
  let sixteenBit = false;
  let cmyk = false;
  const plain = readHeader ? plainHeader(bytes, format) : undefined;
  try {
    // First frame/page only. Embedded ICC profiles are ignored, as PIL ignores them. The pixel limit
    // is checked below from libvips' header read, before the decode; a plain file's size comes from
    // its header here, and libvips checks the limit again from its own reading of the file.
    const input = sharp(bytes, {
      limitInputPixels: plain ? maxPixels : false,
      pages: 1,
      page: 0,
      failOn: 'error',
      ignoreIcc: true,
    });
    if (!plain || plain.width * plain.height > maxPixels) {
      const meta = await input.metadata();
      const w = meta.autoOrient?.width ?? meta.width ?? 0;
      const h = meta.autoOrient?.height ?? meta.height ?? 0;
      if (!w || !h) return { ok: false, status: 422, message: 'the image has no dimensions' };
      if (w * h > maxPixels) {
        return {
          ok: false,
          status: 413,
          message: `image is ${w}×${h} = ${w * h} pixels, over the limit of ${maxPixels}`,
        };
      }
      sixteenBit = meta.depth === 'ushort';
      // CMYK stays CMYK through libvips (its raw inks, no profile); PIL's formula makes it RGB below.
      cmyk = meta.space === 'cmyk';
    }
    const space = cmyk ? 'cmyk' : sixteenBit ? 'rgb16' : 'srgb';
    decoded = await (cmyk ? input.pipelineColourspace('cmyk') : input)
      .autoOrient()
      .toColourspace(space)
      .raw({ depth: sixteenBit ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    // libvips read another size than the header here did: its own reading decides, and says why
    if (plain && /pixel limit/.test((e as Error).message)) return decodeWithSharp(bytes, format, maxPixels, false);
    return { ok: false, status: 422, message: `cannot decode the ${format} image: ${(e as Error).message}` };
  }
  const { width, height, channels } = decoded.info;
  if (format === 'gif') {
    const frame = readGifFirstFrame(bytes);
    if (!frame || !repaintGifFirstFrame(frame, decoded.data, width, height, channels)) {
      return {
        ok: false,
        status: 422,
        message: 'cannot decode the gif image: its first frame does not lie on its screen as PIL places it',
      };
    }
  }
  const rgb = cmyk
    ? cmykToRgb(decoded.data, width, height, channels, sixteenBit)
    : toRgb8(decoded.data, width, height, channels, sixteenBit);
  return { ok: true, rgb, width, height };
}

/** Interleaved pixels with 1–4 channels (8 or 16 bit) → interleaved 8-bit RGB, alpha dropped. */
export function toRgb8(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  sixteenBit: boolean,
): Uint8Array {
  const n = width * height;
  if (!sixteenBit && channels === 3) return data; // already what the resampler takes
  const out = new Uint8Array(n * 3);
  if (!sixteenBit && channels === 4) {
    for (let i = 0, p = 0, o = 0; i < n; i++, p += 4, o += 3) {
      out[o] = data[p]!;
      out[o + 1] = data[p + 1]!;
      out[o + 2] = data[p + 2]!;
    }
    return out;
  }
  const src = sixteenBit ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : data;
  const shift = sixteenBit ? 8 : 0;
  const grey = channels < 3;
  for (let i = 0, p = 0, o = 0; i < n; i++, p += channels, o += 3) {
    if (grey) {
      const v = src[p]! >> shift;
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
    } else {
      out[o] = src[p]! >> shift;
      out[o + 1] = src[p + 1]! >> shift;
      out[o + 2] = src[p + 2]! >> shift;
    }
  }
  return out;
}
