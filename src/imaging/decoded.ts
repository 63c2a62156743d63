// What decoding gives: full-size RGB as PIL's convert('RGB') makes it, the resized pixels the towers
// take, or a failure with the HTTP status it maps to. Shared by every decoder (decode.ts, bmp.ts).

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'heif' | 'bmp';

export interface PreprocessOptions {
  size: number;
  /** Largest width × height accepted, checked from the header before the full decode. */
  maxPixels: number;
}

export type DecodeFailure = { ok: false; status: 413 | 415 | 422; message: string };

/** Full-size interleaved 8-bit RGB, what PIL's open → exif_transpose → convert('RGB') gives. */
export type DecodeResult = { ok: true; rgb: Uint8Array; width: number; height: number } | DecodeFailure;

export type PreprocessResult =
  | {
      ok: true;
      /** size × size × 3 interleaved RGB */ rgb: Uint8Array;
      width: number;
      height: number;
      format: ImageFormat;
    }
  | DecodeFailure;
