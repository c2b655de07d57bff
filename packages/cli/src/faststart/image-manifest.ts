// Opens an image (folder or http(s) URL) just for its manifest.
import { openImage, openImageSource, type Manifest } from '@rockit/engine';

export async function readImageManifest(location: string): Promise<{ manifest: Manifest; manifestName: string; manifestSizeBytes: number }> {
  const source = openImageSource(location);
  try {
    const img = await openImage(source);
    return { manifest: img.manifest, manifestName: img.imageJson.manifest.name, manifestSizeBytes: img.imageJson.manifest.sizeBytes };
  } finally {
    await source.close();
  }
}

/** Bandwidths for reports: Mbit/s → bytes/s, and the report key ("25Mbit"). */
export const REPORT_BANDWIDTHS_MBIT = [25, 100, 1000];
export const mbitKey = (mbit: number): string => `${mbit}Mbit`;
export const mbitToBytesPerSecond = (mbit: number): number => (mbit * 1_000_000) / 8;

/** Parses "25,100,1000" (Mbit/s). */
export function parseBandwidths(text: string): number[] {
  const list = text.split(',').map((s) => s.trim());
  if (list.length === 0 || list.length > 32) throw new Error('--bandwidth takes 1 to 32 comma-separated values in Mbit/s');
  return list.map((s) => {
    const v = Number(s);
    if (!/^\d+(\.\d+)?$/.test(s) || !(v > 0) || v > 1_000_000) throw new Error(`--bandwidth: ${JSON.stringify(s)} is not a bandwidth in Mbit/s`);
    return v;
  });
}
