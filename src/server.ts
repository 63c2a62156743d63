export async function serveCommand(_argv: string[]): Promise<void> { throw new Error('not yet'); }
