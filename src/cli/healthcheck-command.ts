// `albef-embed healthcheck`: exit 0 when the local service answers /readyz 200 (for HEALTHCHECK).

export async function healthcheckCommand(argv: string[]): Promise<void> {
  const port = Number(argv[argv.indexOf('--port') + 1] || process.env.ALBEF_PORT || 8080);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2500) });
    process.exit(res.status === 200 ? 0 : 1);
  } catch {
    process.exit(1);
  }
}
