export async function fetchCommand(_argv: string[]): Promise<void> { throw new Error('not yet'); }
